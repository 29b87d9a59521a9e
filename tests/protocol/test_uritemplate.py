"""RFC 6570 expansion (the RFC's own examples), parsing errors, and reverse matching for routing."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcpserve.protocol.uritemplate import MAX_URI_CHARS, InvalidUriTemplate, UriTemplate

# RFC 6570 section 3.2 variables (the associative array ``keys`` is not supported).
RFC_VARIABLES: dict[str, str | Sequence[str]] = {
    "count": ("one", "two", "three"),
    "dom": ("example", "com"),
    "dub": "me/too",
    "hello": "Hello World!",
    "half": "50%",
    "var": "value",
    "who": "fred",
    "base": "http://example.com/home/",
    "path": "/foo/bar",
    "list": ("red", "green", "blue"),
    "v": "6",
    "x": "1024",
    "y": "768",
    "empty": "",
    "empty_list": [],
}

RFC_EXAMPLES = [
    # 3.2.1 Variable expansion
    ("{count}", "one,two,three"),
    ("{count*}", "one,two,three"),
    ("{/count}", "/one,two,three"),
    ("{/count*}", "/one/two/three"),
    ("{;count}", ";count=one,two,three"),
    ("{;count*}", ";count=one;count=two;count=three"),
    ("{?count}", "?count=one,two,three"),
    ("{?count*}", "?count=one&count=two&count=three"),
    ("{&count*}", "&count=one&count=two&count=three"),
    # 3.2.2 Simple string expansion
    ("{var}", "value"),
    ("{hello}", "Hello%20World%21"),
    ("{half}", "50%25"),
    ("O{empty}X", "OX"),
    ("O{undef}X", "OX"),
    ("{x,y}", "1024,768"),
    ("{x,hello,y}", "1024,Hello%20World%21,768"),
    ("?{x,empty}", "?1024,"),
    ("?{x,undef}", "?1024"),
    ("?{undef,y}", "?768"),
    ("{var:3}", "val"),
    ("{var:30}", "value"),
    ("{list}", "red,green,blue"),
    ("{list*}", "red,green,blue"),
    # 3.2.3 Reserved expansion
    ("{+var}", "value"),
    ("{+hello}", "Hello%20World!"),
    ("{+half}", "50%25"),
    ("{base}index", "http%3A%2F%2Fexample.com%2Fhome%2Findex"),
    ("{+base}index", "http://example.com/home/index"),
    ("O{+empty}X", "OX"),
    ("O{+undef}X", "OX"),
    ("{+path}/here", "/foo/bar/here"),
    ("here?ref={+path}", "here?ref=/foo/bar"),
    ("up{+path}{var}/here", "up/foo/barvalue/here"),
    ("{+x,hello,y}", "1024,Hello%20World!,768"),
    ("{+path,x}/here", "/foo/bar,1024/here"),
    ("{+path:6}/here", "/foo/b/here"),
    ("{+list}", "red,green,blue"),
    ("{+list*}", "red,green,blue"),
    # 3.2.4 Fragment expansion
    ("{#var}", "#value"),
    ("{#hello}", "#Hello%20World!"),
    ("{#half}", "#50%25"),
    ("foo{#empty}", "foo#"),
    ("foo{#undef}", "foo"),
    ("{#x,hello,y}", "#1024,Hello%20World!,768"),
    ("{#path,x}/here", "#/foo/bar,1024/here"),
    ("{#path:6}/here", "#/foo/b/here"),
    ("{#list}", "#red,green,blue"),
    ("{#list*}", "#red,green,blue"),
    # 3.2.5 Label expansion with dot-prefix
    ("{.who}", ".fred"),
    ("{.half,who}", ".50%25.fred"),
    ("www{.dom*}", "www.example.com"),
    ("X{.var}", "X.value"),
    ("X{.empty}", "X."),
    ("X{.undef}", "X"),
    ("X{.var:3}", "X.val"),
    ("X{.list}", "X.red,green,blue"),
    ("X{.list*}", "X.red.green.blue"),
    # 3.2.6 Path segment expansion
    ("{/who}", "/fred"),
    ("{/half,who}", "/50%25/fred"),
    ("{/who,dub}", "/fred/me%2Ftoo"),
    ("{/var}", "/value"),
    ("{/var,empty}", "/value/"),
    ("{/var,undef}", "/value"),
    ("{/var,x}/here", "/value/1024/here"),
    ("{/list}", "/red,green,blue"),
    ("{/list*}", "/red/green/blue"),
    ("{/list*,path:4}", "/red/green/blue/%2Ffoo"),
    # 3.2.7 Path-style parameter expansion
    ("{;who}", ";who=fred"),
    ("{;half}", ";half=50%25"),
    ("{;empty}", ";empty"),
    ("{;v,empty,who}", ";v=6;empty;who=fred"),
    ("{;v,bar,who}", ";v=6;who=fred"),
    ("{;x,y}", ";x=1024;y=768"),
    ("{;x,y,empty}", ";x=1024;y=768;empty"),
    ("{;x,y,undef}", ";x=1024;y=768"),
    ("{;hello:5}", ";hello=Hello"),
    ("{;list}", ";list=red,green,blue"),
    ("{;list*}", ";list=red;list=green;list=blue"),
    # 3.2.8 Form-style query expansion
    ("{?who}", "?who=fred"),
    ("{?half}", "?half=50%25"),
    ("{?x,y}", "?x=1024&y=768"),
    ("{?x,y,empty}", "?x=1024&y=768&empty="),
    ("{?x,y,undef}", "?x=1024&y=768"),
    ("{?var:3}", "?var=val"),
    ("{?list}", "?list=red,green,blue"),
    ("{?list*}", "?list=red&list=green&list=blue"),
    # 3.2.9 Form-style query continuation
    ("{&who}", "&who=fred"),
    ("{&half}", "&half=50%25"),
    ("?fixed=yes{&x}", "?fixed=yes&x=1024"),
    ("{&x,y,empty}", "&x=1024&y=768&empty="),
    ("{&var:3}", "&var=val"),
    ("{&list}", "&list=red,green,blue"),
    ("{&list*}", "&list=red&list=green&list=blue"),
    # Section 1.2 level examples not repeated above
    ("X{#var}", "X#value"),
    ("X{#hello}", "X#Hello%20World!"),
    ("map?{x,y}", "map?1024,768"),
    ("X{.x,y}", "X.1024.768"),
    ("{var:20}", "value"),
    # Empty lists are undefined
    ("a{empty_list}b", "ab"),
    ("a{/empty_list*}b", "ab"),
    ("a{?empty_list}", "a"),
]


@pytest.mark.parametrize(("template", "expected"), RFC_EXAMPLES)
def test_rfc6570_expansion_examples(template: str, expected: str) -> None:
    assert UriTemplate.parse(template).expand(RFC_VARIABLES) == expected


@pytest.mark.parametrize("template", ["{.who,who}", "{/who,who}", "{/var:1,var}"])
def test_rfc_examples_repeating_a_variable_are_rejected_by_design(template: str) -> None:
    # Matching could not assign one variable two values, so templates must name each variable once.
    with pytest.raises(InvalidUriTemplate, match="appears twice"):
        UriTemplate.parse(template)


def test_expansion_encodes_utf8_and_keeps_reserved_escapes() -> None:
    assert UriTemplate.parse("{v}").expand({"v": "é €"}) == "%C3%A9%20%E2%82%AC"
    assert UriTemplate.parse("{+v}").expand({"v": "a%2Fb%zz/é"}) == "a%2Fb%25zz/%C3%A9"
    assert UriTemplate.parse("{+v:2}").expand({"v": "%41%42%43"}) == "%41%42"
    assert UriTemplate.parse("{v:2}").expand({"v": "éèê"}) == "%C3%A9%C3%A8"
    assert UriTemplate.parse("café/{v}").expand({"v": "x"}) == "caf%C3%A9/x"


def test_expansion_rejects_unsupported_values() -> None:
    with pytest.raises(TypeError, match="associative-array"):
        UriTemplate.parse("{keys}").expand({"keys": {"a": "1"}})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="string or a sequence"):
        UriTemplate.parse("{n}").expand({"n": 5})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="string or a sequence"):
        UriTemplate.parse("{n}").expand({"n": b"bytes"})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="string or a sequence"):
        UriTemplate.parse("{n}").expand({"n": ["a", 1]})  # type: ignore[list-item]
    with pytest.raises(ValueError, match="prefix modifier"):
        UriTemplate.parse("{list:3}").expand({"list": ["red"]})


def test_none_is_undefined() -> None:
    assert UriTemplate.parse("a{x}{?y}").expand({"x": None, "y": None}) == "a"


def test_parse_exposes_names_in_order() -> None:
    template = UriTemplate.parse("repo://{owner}/{+path}{/rest*}{?ref,depth:3}{&tag*}{#frag}")
    assert template.template == "repo://{owner}/{+path}{/rest*}{?ref,depth:3}{&tag*}{#frag}"
    assert template.variable_names == ("owner", "path", "rest", "ref", "depth", "tag", "frag")
    assert template.query_variable_names == ("ref", "depth", "tag")
    assert UriTemplate.parse("plain://uri").variable_names == ()
    assert UriTemplate.parse("{a.b,%41_1}").variable_names == ("a.b", "%41_1")


def test_templates_compare_by_text() -> None:
    assert UriTemplate.parse("x/{a}") == UriTemplate.parse("x/{a}")
    assert UriTemplate.parse("x/{a}") != UriTemplate.parse("x/{b}")
    assert len({UriTemplate.parse("x/{a}"), UriTemplate.parse("x/{a}")}) == 1
    assert repr(UriTemplate.parse("x/{a}")) == "UriTemplate('x/{a}')"


@pytest.mark.parametrize(
    ("template", "position", "problem"),
    [
        ("x/{id", 2, "unclosed '{'"),
        ("x/id}", 4, "'}' without a matching '{'"),
        ("x/{}", 3, "empty expression"),
        ("x/{+}", 4, "empty expression"),
        ("x/{a{b}}", 4, "'{' inside an expression"),
        ("x/{a,,b}", 5, "invalid variable ''"),
        ("x/{a b}", 3, "invalid variable 'a b'"),
        ("x/{a-b}", 3, "invalid variable 'a-b'"),
        ("x/{.a.}", 4, "invalid variable 'a.'"),
        ("x/{a:0}", 3, "invalid variable 'a:0'"),
        ("x/{a:10000}", 3, "invalid variable 'a:10000'"),
        ("x/{a*:3}", 3, "invalid variable 'a*:3'"),
        ("x/{=a}", 3, "operator '=' is reserved"),
        ("x/{|a}", 3, "operator '|' is reserved"),
        ("x/{a}/{b}/{a}", 10, "variable 'a' appears twice"),
        ("x/{a,b}{?a}", 7, "variable 'a' appears twice"),
        ("x y/{a}", 1, "character ' ' is not allowed"),
        ("x/<{a}>", 2, "character '<' is not allowed"),
        ("x/\x00", 2, "is not allowed"),
        ("x/50%", 4, "'%' must start a percent-escape"),
        ("x/%zz", 2, "'%' must start a percent-escape"),
    ],
)
def test_parse_errors_name_the_position(template: str, position: int, problem: str) -> None:
    with pytest.raises(InvalidUriTemplate) as caught:
        UriTemplate.parse(template)
    assert caught.value.position == position
    assert problem in str(caught.value)
    assert f"at position {position}" in str(caught.value)


def test_parse_rejects_non_strings() -> None:
    with pytest.raises(TypeError):
        UriTemplate.parse(b"x/{a}")  # type: ignore[arg-type]


# -- matching ------------------------------------------------------------------------------------------
MATCHES = [
    ("test://template/{id}/data", "test://template/123/data", {"id": "123"}),
    ("test://template/{id}/data", "test://template/a%2Fb%20c/data", {"id": "a/b c"}),
    ("test://template/{id}/data", "test://template/%E2%82%AC/data", {"id": "€"}),
    ("test://template/{id}/data", "test://template/café/data", {"id": "café"}),
    ("users/{user}/posts/{post}", "users/ada/posts/7", {"user": "ada", "post": "7"}),
    ("file:///{+path}", "file:///home/ada/notes.txt", {"path": "home/ada/notes.txt"}),
    ("file:///{+path}", "file:///a/b?c=d#e", {"path": "a/b?c=d#e"}),
    ("file:///{+path}", "file:///a%20b/c", {"path": "a b/c"}),
    ("file:///{+path}/meta", "file:///a/meta/b/meta", {"path": "a/meta/b"}),
    ("file:///{+path}{?rev}", "file:///a/b?rev=3", {"path": "a/b", "rev": "3"}),
    ("file:///{+path}{?rev}", "file:///a/b", {"path": "a/b"}),
    ("doc{#section}", "doc#intro/part?x", {"section": "intro/part?x"}),
    ("doc{#section}", "doc", {}),
    ("tree{/path*}", "tree/a/b/c", {"path": ["a", "b", "c"]}),
    ("tree{/path*}", "tree/a", {"path": ["a"]}),
    ("tree{/path*}", "tree", {}),
    ("tree{/path*}/leaf", "tree/a/b/leaf", {"path": ["a", "b"]}),
    ("tree{/path*}/leaf", "tree/leaf", {}),
    ("tree{/a,b}", "tree/x/y", {"a": "x", "b": "y"}),
    ("tree{/a,b}", "tree/x", {"a": "x"}),
    ("search{?q,lang}", "search?q=mcp&lang=en", {"q": "mcp", "lang": "en"}),
    ("search{?q,lang}", "search?lang=en&q=mcp", {"q": "mcp", "lang": "en"}),
    ("search{?q,lang}", "search?lang=en", {"lang": "en"}),
    ("search{?q,lang}", "search", {}),
    ("search{?q,lang}", "search?q=", {"q": ""}),
    ("search{?q,lang}", "search?q=a%26b%3Dc,d", {"q": "a&b=c,d"}),
    ("search{?q}{&page}", "search?page=2&q=x", {"q": "x", "page": "2"}),
    ("search?fixed=1{&page}", "search?fixed=1&page=2", {"page": "2"}),
    ("search?fixed=1{&page}", "search?fixed=1", {}),
    ("tags{?tag*}", "tags?tag=a&tag=b", {"tag": ["a", "b"]}),
    ("tags{?tag*,n}", "tags?tag=a&n=1&tag=b", {"tag": ["a", "b"], "n": "1"}),
    ("m{;x,y}", "m;y=2;x=1", {"x": "1", "y": "2"}),
    ("m{;x,y}", "m;x", {"x": ""}),
    ("m{;list*}", "m;list=a;list=b", {"list": ["a", "b"]}),
    ("{name}.{ext}", "archive.tar.gz", {"name": "archive", "ext": "tar.gz"}),
    ("{name}{.ext}", "archive.tar.gz", {"name": "archive", "ext": "tar.gz"}),
    ("{name}{.ext}", "archive", {"name": "archive"}),
    ("www{.dom*}", "www.example.com", {"dom": ["example", "com"]}),
    ("{x,y}", "1024,768", {"x": "1024", "y": "768"}),
    ("{list}", "red,green,blue", {"list": "red,green,blue"}),
    ("{list*}", "red,green,blue", {"list": ["red", "green", "blue"]}),
    ("{+list*}", "a/b,c", {"list": ["a/b", "c"]}),
    ("{#path,x}/here", "#/foo/bar,1024/here", {"path": "/foo/bar", "x": "1024"}),
    ("{#path,x}/here", "#/foo/bar/here", {"path": "/foo/bar"}),
    ("{+path:6}/here", "/foo/b/here", {"path": "/foo/b"}),
    ("{var:3}{rest}", "valuerest", {"var": "val", "rest": "uerest"}),
    ("x/{a}%2F{b}", "x/1%2F2", {"a": "1", "b": "2"}),
    ("{x,y}", "a,b,c", {"x": "a", "y": "b,c"}),
    ("{/list}", "/red,green,blue", {"list": "red,green,blue"}),
    ("café/{v}", "café/1", {"v": "1"}),
    ("café/{v}", "caf%C3%A9/1", {"v": "1"}),
    ("fixed://uri", "fixed://uri", {}),
]


@pytest.mark.parametrize(("template", "uri", "expected"), MATCHES)
def test_match(template: str, uri: str, expected: dict[str, str | list[str]]) -> None:
    assert UriTemplate.parse(template).match(uri) == expected


NON_MATCHES = [
    ("test://template/{id}/data", "test://template/1/2/data"),  # simple vars never span "/"
    ("test://template/{id}/data", "test://template/1?x/data"),
    ("test://template/{id}/data", "test://template/1#x/data"),
    ("test://template/{id}/data", "test://template//data"),  # {var} needs at least one character
    ("test://template/{id}/data", "test://template/1/datA"),  # literals match exactly
    ("test://template/{id}/data", "TEST://template/1/data"),
    ("test://template/{id}/data", "test://template/1/data/"),
    ("test://template/{id}/data", "other://template/1/data"),
    ("test://template/{id}", "test://template/%FF"),  # not UTF-8
    ("test://template/{id}", "test://template/%G0"),  # malformed escape
    ("test://template/{id}", "test://template/50%"),
    ("test://template/{id}", "test://template/a b"),  # not a URI character
    ("file:///{+path}", "file:///"),
    ("file:///{+path}", "file:///a b"),
    ("file:///{+path}/meta", "file:///a/b"),
    ("search{?q,lang}", "search?other=1"),  # unknown parameter
    ("search{?q,lang}", "search?q=1&q=2"),  # repeated non-exploded parameter
    ("search{?q,lang}", "search?q"),  # form-style parameters need "="
    ("search{?q,lang}", "search?"),
    ("search{?q,lang}", "search&q=1"),
    ("search{?q:3}", "search?q=abcd"),
    ("m{;x}", "m;xy=1"),
    ("{x,y}", ""),
    ("tree{/path*}", "tree/"),
    ("tree{/path*}", "tree//a"),
    ("fixed://uri", "fixed://uri2"),
    ("x/{a}%2F{b}", "x/1%2f2"),  # literal escapes too match exactly
    ("{list*}", "red,,blue"),
]


@pytest.mark.parametrize(("template", "uri"), NON_MATCHES)
def test_no_match(template: str, uri: str) -> None:
    assert UriTemplate.parse(template).match(uri) is None


def test_non_string_and_over_long_uris_never_match() -> None:
    template = UriTemplate.parse("x/{+rest}")
    assert template.match("x/" + "a" * (MAX_URI_CHARS - 2)) == {"rest": "a" * (MAX_URI_CHARS - 2)}
    assert template.match("x/" + "a" * (MAX_URI_CHARS - 1)) is None
    assert template.match(None) is None  # type: ignore[arg-type]
    assert template.match(b"x/a") is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "template",
    [
        "{a}.{b}.{c}x",
        "{+a}/{+b}/{+c}/end",
        "{+a}x{b}y",
        "{+a,b,c}/x",
        "{a}{b}{c}{d}",
        "{/l*}/{/m*}/x",
        "{.a*}.{.b*}.x",
        "{#a}{+b}/{/c*}/{;d,e}{?f,g*}{&h}z",
        "{+a:9999}/{+b:9999}x",
    ],
)
def test_adversarial_input_is_matched_in_linear_time(template: str) -> None:
    parsed = UriTemplate.parse(template)
    started = time.perf_counter()
    for pattern in ("/", ".", ",", "x", "a", "/x", ".x", "%41", "a=", "&a"):
        body = (pattern * MAX_URI_CHARS)[: MAX_URI_CHARS - 1]
        for uri in (body, body + " ", body[: MAX_URI_CHARS // 2] + "y" * (MAX_URI_CHARS // 2 - 1)):
            parsed.match(uri)
    # Backtracking regexes take seconds to hours here; the atomic compilation stays in milliseconds.
    assert time.perf_counter() - started < 1.0


# -- round trip property -------------------------------------------------------------------------------
_SAFE = "abcXYZ019-._~"
_RESERVED = ":/?#[]@!$&'()*+,;="
_TEXT = st.text(
    alphabet=st.sampled_from([*_SAFE, *_RESERVED, " ", "%", "é", "€", "😀"]), min_size=1, max_size=12
)
# Reserved expansion leaves "%XX" alone and "," splits lists, so those values avoid "%" (and ",").
_RESERVED_TEXT = st.text(alphabet=st.sampled_from([*_SAFE, *_RESERVED, " ", "é"]), min_size=1, max_size=12)
# "{b}.{c}" reads up to the first ".", so b cannot contain one.
_NO_DOT_TEXT = st.text(
    alphabet=st.sampled_from([*_SAFE.replace(".", ""), *_RESERVED, "é"]), min_size=1, max_size=12
)
_ITEMS = st.lists(_TEXT, min_size=1, max_size=4)

# template -> (strategy per variable, variables that must be present)
ROUND_TRIP_TEMPLATES: dict[str, tuple[dict[str, st.SearchStrategy[Any]], set[str]]] = {
    "test://template/{id}/data": ({"id": _TEXT}, {"id"}),
    "repo://{owner}/{repo}/issues{?state,labels}": (
        {"owner": _TEXT, "repo": _TEXT, "state": _TEXT, "labels": _TEXT},
        {"owner", "repo"},
    ),
    "tree://root{/path*}{?depth}": ({"path": _ITEMS, "depth": _TEXT}, set()),
    "file:///{+path}": ({"path": _RESERVED_TEXT}, {"path"}),
    "file:///{+path}/meta{?v}": ({"path": _RESERVED_TEXT, "v": _TEXT}, {"path"}),
    "tags://{kind}{?tag*}{&page}": ({"kind": _TEXT, "tag": _ITEMS, "page": _TEXT}, {"kind"}),
    "m://{x}{;a,b}{#frag}": ({"x": _TEXT, "a": _TEXT, "b": _TEXT, "frag": _RESERVED_TEXT}, {"x"}),
    "n://{a}/{b}.{c}": ({"a": _TEXT, "b": _NO_DOT_TEXT, "c": _TEXT}, {"a", "b", "c"}),
}


@st.composite
def _template_and_values(draw: st.DrawFn) -> tuple[str, dict[str, str | list[str]]]:
    template = draw(st.sampled_from(sorted(ROUND_TRIP_TEMPLATES)))
    strategies, required = ROUND_TRIP_TEMPLATES[template]
    values: dict[str, str | list[str]] = {}
    for name, strategy in strategies.items():
        if name in required or draw(st.booleans()):
            values[name] = draw(strategy)
    return template, values


@given(_template_and_values())
def test_match_inverts_expand(case: tuple[str, dict[str, str | list[str]]]) -> None:
    template, values = case
    parsed = UriTemplate.parse(template)
    assert parsed.match(parsed.expand(values)) == values
