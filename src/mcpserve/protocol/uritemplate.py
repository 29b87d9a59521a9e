"""RFC 6570 URI templates: parsing, expansion (levels 1-4) and reverse matching for MCP resource templates.

Expansion follows RFC 6570 section 3 for string and list values. Associative-array (``keys``) values are
not supported: passing a mapping raises ``TypeError``.

Matching (URI -> variables) is how ``resources/read`` is routed to a template. RFC 6570 does not define
it, and templates are often ambiguous (``{a}.{b}`` against ``x.y.z``), so this module commits to one
reading, compiled once into a regular expression in which every expression is an atomic group. Nothing
ever backtracks across an expression, so matching time is linear in the URI (times the length of the
literal after a reserved variable), whatever the template or input. The rules:

* A level-1 ``{var}`` value and the values of ``{.}``, ``{/}``, ``{;}``, ``{?}`` and ``{&}`` are made
  of unreserved characters, percent-escapes, (for IRIs) non-ASCII letters and, unless exploded, the
  ``,`` that joins a list. Each runs until the first character that cannot belong to it: that includes
  the operator's separator (except in the last variable of the expression) and the first character of
  whatever follows the expression. ``{name}.{ext}`` reads ``a.tar.gz`` as ``name="a"``,
  ``ext="tar.gz"``; ``{x,y}`` reads ``a,b,c`` as ``x="a"``, ``y="b,c"``.
* ``{+var}`` and ``{#var}`` may contain reserved characters. Followed directly by literal text, the value
  extends to the *last* place where that text occurs (``{+path}/meta`` spans slashes); followed by an
  expression it stops at that expression's leading character (``{+path}{?v}`` stops at ``?``); at the
  end of the template it takes the rest.
* ``{var}`` and ``{+var}`` must match at least one character; expressions with a leading character
  (``{#}``, ``{.}``, ``{/}``, ``{;}``, ``{?}``, ``{&}``) are optional, and their variables are then
  absent from the result. Several variables in one expression are filled left to right.
* ``{?}``/``{&}`` (and ``{;}``) parameters may come in any order; a run of such expressions with
  nothing between them is read as one parameter list. Unknown or repeated (non-exploded) names do not
  match. ``?`` and ``&`` parameters need ``name=``; ``;`` parameters may be bare (empty value).
* Exploded variables (``{/path*}``, ``{?tag*}``) come back as lists; everything else as a string,
  including a non-exploded list (``"red,green,blue"``). Values are percent-decoded as UTF-8; malformed
  escapes or UTF-8 mean no match. A ``:n`` prefix matches at most ``n`` characters.
* Literal text must appear exactly as written (or, for non-ASCII literals, percent-encoded).
* URIs longer than :data:`MAX_URI_CHARS` never match.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from string import ascii_letters, digits
from typing import Final
from urllib.parse import quote, unquote_to_bytes

__all__ = ["InvalidUriTemplate", "UriTemplate", "MAX_URI_CHARS"]

#: URIs longer than this never match (they are not even scanned).
MAX_URI_CHARS: Final = 8 * 1024

_UNRESERVED: Final = frozenset(ascii_letters + digits + "-._~")
_RESERVED: Final = frozenset(":/?#[]@!$&'()*+,;=")
# RFC 6570 section 2.1: ASCII that may not appear literally in a template (besides CTL and "%").
_NOT_LITERAL: Final = frozenset(" \"'<>\\^`{|}")
# ucschar / iprivate, roughly: non-ASCII, non-control, no surrogates.
_UCS: Final = "[\xa0-\ud7ff\ue000-\U0010fffd]"
_UCS_RE: Final = re.compile(_UCS)
_PCT: Final = "%[0-9A-Fa-f]{2}"
_PCT_RE: Final = re.compile(_PCT)
_VARSPEC_RE: Final = re.compile(
    r"(?P<name>(?:[A-Za-z0-9_]|%[0-9A-Fa-f]{2})(?:\.?(?:[A-Za-z0-9_]|%[0-9A-Fa-f]{2}))*)"
    r"(?:(?P<explode>\*)|:(?P<prefix>[1-9][0-9]{0,3}))?"
)
_RESERVED_OPERATORS: Final = frozenset("=,!@|")


class InvalidUriTemplate(ValueError):
    """A template that is not valid RFC 6570 syntax; ``position`` is the 0-based offending index."""

    def __init__(self, template: str, position: int, problem: str) -> None:
        super().__init__(f"invalid URI template {template!r} at position {position}: {problem}")
        self.template = template
        self.position = position
        self.problem = problem


@dataclass(frozen=True, slots=True)
class _Operator:
    first: str
    sep: str
    named: bool
    ifemp: str
    allow_reserved: bool


_OPERATORS: Final = {
    "": _Operator("", ",", False, "", False),
    "+": _Operator("", ",", False, "", True),
    "#": _Operator("#", ",", False, "", True),
    ".": _Operator(".", ".", False, "", False),
    "/": _Operator("/", "/", False, "", False),
    ";": _Operator(";", ";", True, "", False),
    "?": _Operator("?", "&", True, "=", False),
    "&": _Operator("&", "&", True, "=", False),
}


@dataclass(frozen=True, slots=True)
class _VarSpec:
    name: str
    explode: bool
    prefix: int | None


@dataclass(frozen=True, slots=True)
class _Expression:
    operator: str
    varspecs: tuple[_VarSpec, ...]

    @property
    def op(self) -> _Operator:
        return _OPERATORS[self.operator]


@dataclass(frozen=True, slots=True)
class _Literal:
    text: str

    @property
    def forms(self) -> tuple[str, ...]:
        """How the literal may appear in a URI: as written and, if that differs, as expanded."""
        encoded = _encode(self.text, allow_reserved=True)
        return (self.text,) if encoded == self.text else (self.text, encoded)


_Segment = _Literal | _Expression


# -- parsing -------------------------------------------------------------------------------------------
def _parse(template: str) -> tuple[_Segment, ...]:
    segments: list[_Segment] = []
    seen: set[str] = set()
    literal_start = index = 0
    while index < len(template):
        char = template[index]
        if char == "{":
            if index > literal_start:
                segments.append(_Literal(template[literal_start:index]))
            close = template.find("}", index)
            if close < 0:
                raise InvalidUriTemplate(template, index, "unclosed '{'")
            expression = _parse_expression(template, index + 1, close)
            for spec in expression.varspecs:
                if spec.name in seen:
                    raise InvalidUriTemplate(template, index, f"variable {spec.name!r} appears twice")
                seen.add(spec.name)
            segments.append(expression)
            index = literal_start = close + 1
            continue
        if char == "%":
            if not _PCT_RE.match(template, index):
                raise InvalidUriTemplate(template, index, "'%' must start a percent-escape like %20")
            index += 3
            continue
        if char == "}":
            raise InvalidUriTemplate(template, index, "'}' without a matching '{'")
        if (
            char in _NOT_LITERAL
            or (char < "\x80" and not char.isprintable())
            or (char >= "\x80" and not _UCS_RE.match(char))
        ):
            raise InvalidUriTemplate(template, index, f"character {char!r} is not allowed in a URI template")
        index += 1
    if index > literal_start:
        segments.append(_Literal(template[literal_start:]))
    return tuple(segments)


def _parse_expression(template: str, start: int, end: int) -> _Expression:
    body = template[start:end]
    if "{" in body:
        raise InvalidUriTemplate(template, start + body.index("{"), "'{' inside an expression")
    operator = body[:1] if body[:1] in _OPERATORS or body[:1] in _RESERVED_OPERATORS else ""
    if operator in _RESERVED_OPERATORS:
        raise InvalidUriTemplate(template, start, f"operator {operator!r} is reserved for future extensions")
    position = start + len(operator)
    varspecs: list[_VarSpec] = []
    for text in body[len(operator) :].split(","):
        found = _VARSPEC_RE.fullmatch(text)
        if found is None:
            problem = "empty expression" if not body[len(operator) :] else f"invalid variable {text!r}"
            raise InvalidUriTemplate(template, position, problem)
        prefix = found.group("prefix")
        varspecs.append(
            _VarSpec(found.group("name"), bool(found.group("explode")), int(prefix) if prefix else None)
        )
        position += len(text) + 1
    return _Expression(operator, tuple(varspecs))


# -- expansion -----------------------------------------------------------------------------------------
def _encode(value: str, *, allow_reserved: bool) -> str:
    if not allow_reserved:
        return quote(value, safe="")
    # Reserved expansion keeps existing percent-escapes as they are and encodes everything else.
    pieces: list[str] = []
    last = 0
    for escape in _PCT_RE.finditer(value):
        pieces.append(quote(value[last : escape.start()], safe="".join(_RESERVED)))
        pieces.append(escape.group())
        last = escape.end()
    pieces.append(quote(value[last:], safe="".join(_RESERVED)))
    return "".join(pieces)


def _prefix(value: str, length: int, *, allow_reserved: bool) -> str:
    if not allow_reserved:
        return value[:length]
    # A percent-escape counts as one character so the prefix never splits it (RFC 6570 2.4.1).
    units = re.findall(_PCT + "|.", value, flags=re.DOTALL)
    return "".join(units[:length])


def _value_of(variables: Mapping[str, str | Sequence[str] | None], name: str) -> str | list[str] | None:
    """The variable as a string or list, or ``None`` when undefined (missing, ``None`` or empty list)."""
    value = variables.get(name)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        raise TypeError(f"variable {name!r}: associative-array values are not supported")
    if isinstance(value, bytes | bytearray) or not isinstance(value, Sequence):
        raise TypeError(f"variable {name!r} must be a string or a sequence of strings")
    items = list(value)
    if not all(isinstance(item, str) for item in items):
        raise TypeError(f"variable {name!r} must be a string or a sequence of strings")
    return items or None


def _expand_varspec(op: _Operator, spec: _VarSpec, value: str | list[str]) -> str:
    reserved = op.allow_reserved
    if isinstance(value, str):
        shown = value if spec.prefix is None else _prefix(value, spec.prefix, allow_reserved=reserved)
        text = _encode(shown, allow_reserved=reserved)
        if op.named:
            return spec.name + (op.ifemp if not value else "=" + text)
        return text
    if spec.prefix is not None:
        raise ValueError(f"prefix modifier ':{spec.prefix}' does not apply to list variable {spec.name!r}")
    items = [_encode(item, allow_reserved=reserved) for item in value]
    if not spec.explode:
        joined = ",".join(items)
        return f"{spec.name}={joined}" if op.named else joined
    if op.named:
        items = [spec.name + (op.ifemp if not item else "=" + item) for item in items]
    return op.sep.join(items)


# -- matching ------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _ValueCapture:
    """One regex group holding one variable of a non-named expression."""

    group: str
    spec: _VarSpec
    sep: str  # what an exploded value is split on

    def collect(self, text: str, into: dict[str, str | list[str]]) -> bool:
        if self.spec.explode:
            items = [_decode(item) for item in text.split(self.sep)]
            if any(item is None for item in items):
                return False
            into[self.spec.name] = [item for item in items if item is not None]
            return True
        decoded = _decode(text)
        if decoded is None:
            return False
        into[self.spec.name] = decoded
        return True


@dataclass(frozen=True, slots=True)
class _ParamsCapture:
    """One regex group holding a run of named parameters (``;a=1;b`` or ``?a=1&b=2``)."""

    group: str
    sep: str
    specs: dict[str, _VarSpec] = field(hash=False)

    def collect(self, text: str, into: dict[str, str | list[str]]) -> bool:
        # The regex already checked every name; the first character is the run's leading "?", "&" or ";".
        for pair in text[1:].split(self.sep):
            name, _, raw = pair.partition("=")
            spec = self.specs[name]
            value = _decode(raw)
            if value is None or (spec.prefix is not None and len(value) > spec.prefix):
                return False
            if spec.explode:
                existing = into.setdefault(name, [])
                assert isinstance(existing, list)
                existing.append(value)
            elif name in into:
                return False
            else:
                into[name] = value
        return True


_Capture = _ValueCapture | _ParamsCapture


def _decode(text: str) -> str | None:
    try:
        return unquote_to_bytes(text).decode("utf-8")
    except UnicodeDecodeError:
        return None


def _first_unit(text: str) -> str:
    return text[:3] if text.startswith("%") else text[:1]


def _unit(allowed: frozenset[str], excluded: frozenset[str]) -> str:
    """A regex for one value character: one of ``allowed``, a non-ASCII letter, or a percent-escape,
    but never the start of one of the ``excluded`` units (single characters or percent-escapes)."""
    chars = "".join(re.escape(char) for char in sorted(allowed - excluded))
    # ASCII units outside ``allowed`` cannot match anyway; escapes and non-ASCII need a lookahead.
    guards = sorted(unit for unit in excluded if len(unit) == 3 or unit >= "\x80")
    lookahead = f"(?!{'|'.join(re.escape(unit) for unit in guards)})" if guards else ""
    return f"(?:{lookahead}(?:[{chars}]|{_UCS}|{_PCT}))"


class _Compiler:
    """Turns parsed segments into one regex of atomic groups plus the captures that decode it."""

    def __init__(self, segments: tuple[_Segment, ...]) -> None:
        self.segments = segments
        self.captures: list[_Capture] = []
        self.parts: list[str] = []

    def compile(self) -> re.Pattern[str]:
        index = 0
        while index < len(self.segments):
            segment = self.segments[index]
            if isinstance(segment, _Literal):
                self.parts.append("(?:" + "|".join(re.escape(form) for form in segment.forms) + ")")
                index += 1
            elif segment.op.named:
                index = self._params_run(index)
            else:
                self._expression(index, segment)
                index += 1
        return re.compile("".join(self.parts))

    def _group(self) -> str:
        return f"g{len(self.captures)}"

    def _follow(self, index: int) -> frozenset[str]:
        """Units that can start what comes after segment ``index``; values must not contain them."""
        units: set[str] = set()
        for segment in self.segments[index + 1 :]:
            if isinstance(segment, _Literal):
                units.update(_first_unit(form) for form in segment.forms)
                break
            if not segment.op.first:
                break
            units.add(segment.op.first)  # optional expression: what follows it may come next too
        return frozenset(units)

    def _next_literal(self, index: int) -> str | None:
        following = self.segments[index + 1] if index + 1 < len(self.segments) else None
        if isinstance(following, _Literal):
            return "(?:" + "|".join(re.escape(form) for form in following.forms) + ")"
        return None

    def _expression(self, index: int, expression: _Expression) -> None:
        op = expression.op
        follow = self._follow(index)
        pieces: list[str] = []
        last = len(expression.varspecs) - 1
        for position, spec in enumerate(expression.varspecs):
            group = self._group()
            self.captures.append(_ValueCapture(group, spec, op.sep))
            if op.allow_reserved:
                body = self._reserved(index, spec, position == last, follow)
            else:
                # Only the last variable may hold the separator ("{x,y}" reads "a,b,c" as a / b,c).
                keep_sep = position == last and not spec.explode
                body = self._value(index, spec, op, follow if keep_sep else follow | {op.sep})
            pieces.append(f"(?P<{group}>{body})")
        # Later variables are optional, nested so they fill left to right.
        pattern = pieces[-1]
        for piece in reversed(pieces[:-1]):
            pattern = f"{piece}(?:{re.escape(op.sep)}{pattern})?"
        if op.first:
            self.parts.append(f"(?>(?:{re.escape(op.first)}{pattern})?)")
        else:
            self.parts.append(f"(?>{pattern})")

    def _reserved(self, index: int, spec: _VarSpec, last: bool, follow: frozenset[str]) -> str:
        # Only the last variable may hold the separator; earlier ones stop at the first ",".
        allowed = _UNRESERVED | _RESERVED if last else (_UNRESERVED | _RESERVED) - {","}
        repeat = "+" if spec.prefix is None else f"{{1,{spec.prefix}}}"
        literal = self._next_literal(index)
        if literal is not None:
            # Greedy, then back off to the last place the literal (or a separator) follows; commit.
            ahead = literal if last else f",|{literal}"
            return f"(?>{_unit(allowed, frozenset())}{repeat}(?={ahead}))"
        return f"{_unit(allowed, follow)}{repeat}+"

    def _value(self, index: int, spec: _VarSpec, op: _Operator, excluded: frozenset[str]) -> str:
        if not spec.explode:
            # A non-exploded list is joined with a raw ","; exploded items never hold one.
            unit = _unit(_UNRESERVED | {","}, excluded)
            return f"{unit}{{1,{spec.prefix}}}+" if spec.prefix is not None else f"{unit}++"
        unit = _unit(_UNRESERVED, excluded)
        sep = re.escape(op.sep)
        literal = self._next_literal(index)
        if literal is not None and self._follow(index) & {op.sep}:
            # The literal starts with the separator: give back whole items until it follows.
            return f"(?>{unit}++(?:{sep}{unit}++)*(?={literal}))"
        return f"{unit}++(?:{sep}{unit}++)*+"

    def _params_run(self, index: int) -> int:
        """Compile ``{;..}`` or ``{?..}{&..}..`` expressions that sit side by side as one parameter list."""
        first = self.segments[index]
        assert isinstance(first, _Expression)
        lead = first.op.first
        continuation = ";" if lead == ";" else "&"
        specs: dict[str, _VarSpec] = {}
        end = index
        while True:
            segment = self.segments[end]
            assert isinstance(segment, _Expression)
            specs.update((spec.name, spec) for spec in segment.varspecs)
            following = self.segments[end + 1] if end + 1 < len(self.segments) else None
            if not (isinstance(following, _Expression) and following.operator == continuation):
                break
            end += 1
        group = self._group()
        self.captures.append(_ParamsCapture(group, first.op.sep, specs))
        names = "|".join(re.escape(name) for name in sorted(specs, key=lambda name: (-len(name), name)))
        unit = _unit(_UNRESERVED | {","}, self._follow(end))
        value = f"={unit}*+" if first.op.ifemp else f"(?:={unit}*+)?"
        pair = f"(?:{names}){value}"
        sep = re.escape(first.op.sep)
        # In "{?a}{&b}" with a undefined, RFC 6570 expands b alone as "&b=..": accept that lead too.
        leads = re.escape(lead) if end == index else f"[{re.escape(lead)}&]"
        self.parts.append(f"(?>(?P<{group}>{leads}{pair}(?:{sep}{pair})*+)?)")
        return end + 1


class UriTemplate:
    """A parsed RFC 6570 template that can expand variables and match URIs back into them."""

    __slots__ = ("_captures", "_pattern", "_segments", "query_variable_names", "template", "variable_names")

    template: str
    variable_names: tuple[str, ...]
    query_variable_names: tuple[str, ...]

    def __init__(self, template: str) -> None:
        if not isinstance(template, str):
            raise TypeError("a URI template must be a string")
        self.template = template
        self._segments = _parse(template)
        expressions = [seg for seg in self._segments if isinstance(seg, _Expression)]
        self.variable_names = tuple(spec.name for expr in expressions for spec in expr.varspecs)
        self.query_variable_names = tuple(
            spec.name for expr in expressions if expr.operator in ("?", "&") for spec in expr.varspecs
        )
        compiler = _Compiler(self._segments)
        self._pattern = compiler.compile()
        self._captures = tuple(compiler.captures)

    @classmethod
    def parse(cls, template: str) -> UriTemplate:
        """Parse and validate ``template``; :class:`InvalidUriTemplate` says what is wrong and where."""
        return cls(template)

    def __repr__(self) -> str:
        return f"UriTemplate({self.template!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, UriTemplate) and other.template == self.template

    def __hash__(self) -> int:
        return hash(self.template)

    def expand(self, variables: Mapping[str, str | Sequence[str] | None]) -> str:
        """Expand per RFC 6570 section 3.2; missing, ``None`` and empty-list variables are undefined."""
        out: list[str] = []
        for segment in self._segments:
            if isinstance(segment, _Literal):
                out.append(_encode(segment.text, allow_reserved=True))
                continue
            op = segment.op
            parts = []
            for spec in segment.varspecs:
                value = _value_of(variables, spec.name)
                if value is not None:
                    parts.append(_expand_varspec(op, spec, value))
            if parts:
                out.append(op.first + op.sep.join(parts))
        return "".join(out)

    def match(self, uri: str) -> dict[str, str | list[str]] | None:
        """The variables that expand to ``uri`` (see the module docstring for the rules), or ``None``."""
        if not isinstance(uri, str) or len(uri) > MAX_URI_CHARS:
            return None
        found = self._pattern.fullmatch(uri)
        if found is None:
            return None
        result: dict[str, str | list[str]] = {}
        for capture in self._captures:
            text = found.group(capture.group)
            if text is not None and not capture.collect(text, result):
                return None
        return result
