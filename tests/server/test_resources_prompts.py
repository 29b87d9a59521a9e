"""Resources, resource templates, prompts and list pagination in both eras."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from mcpserve import Context, Image, MCPServer
from mcpserve.principal import Principal
from mcpserve.server.pagination import paginate
from tests.server.support import build_server, dispatcher, error_of, legacy, modern, result_of

pytestmark = pytest.mark.anyio


async def _read(uri: str, **options: Any) -> dict[str, Any]:
    return await dispatcher().handle(modern("resources/read", {"uri": uri}, **options))


# -- resources -------------------------------------------------------------------------------------


async def test_resources_list_describes_static_resources() -> None:
    resources = result_of(await dispatcher().handle(modern("resources/list")))["resources"]
    by_uri = {r["uri"]: r for r in resources}
    assert by_uri["config://app"] == {
        "uri": "config://app",
        "name": "app_config",
        "title": "App config",
        "description": "The configuration.",
        "mimeType": "text/plain",
    }
    assert by_uri["data://logo"] == {"uri": "data://logo", "name": "logo", "description": "The logo."}
    assert by_uri["data://stats"]["annotations"] == {"audience": ["user"]}
    assert list(by_uri) == [
        "config://app",
        "data://logo",
        "data://stats",
        "data://weather",
        "data://broken",
        "admin://secrets",
    ]


async def test_templates_list_describes_uri_templates() -> None:
    result = result_of(await dispatcher().handle(modern("resources/templates/list")))
    assert result["resourceTemplates"] == [
        {
            "uriTemplate": "users://{user_id}/profile",
            "name": "profile",
            "description": "A user's profile.",
            "mimeType": "application/json",
        },
        {"uriTemplate": "vault://{name}", "name": "vault"},
    ]


async def test_read_text_resource() -> None:
    result = result_of(await _read("config://app"))
    assert result["contents"] == [{"uri": "config://app", "mimeType": "text/plain", "text": "debug = false"}]
    assert result["resultType"] == "complete"


async def test_read_binary_resource_is_a_base64_blob() -> None:
    (content,) = result_of(await _read("data://logo"))["contents"]
    assert content == {
        "uri": "data://logo",
        "blob": base64.b64encode(b"\x89PNG").decode(),
        "mimeType": "application/octet-stream",
    }


async def test_read_structured_resources_as_json_text() -> None:
    (stats,) = result_of(await _read("data://stats"))["contents"]
    assert stats == {"uri": "data://stats", "mimeType": "application/json", "text": '{"users":3}'}
    (weather,) = result_of(await _read("data://weather"))["contents"]
    assert weather["text"] == '{"city":"Oslo","celsius":-3.0}'


async def test_read_template_converts_variables_to_parameter_types() -> None:
    (content,) = result_of(await _read("users://42/profile"))["contents"]
    assert content == {
        "uri": "users://42/profile",
        "mimeType": "application/json",
        "text": '{"id":42,"name":"user42"}',
    }


async def test_template_variable_of_the_wrong_type_is_invalid_params() -> None:
    error = error_of(await _read("users://abc/profile"))
    assert error["code"] == -32602
    assert error["message"].startswith("Invalid resource URI: user_id:")


async def test_resource_not_found_is_32602_with_the_uri_in_modern() -> None:
    error = error_of(await _read("nope://missing"))
    assert error == {
        "code": -32602,
        "message": "Resource not found: nope://missing",
        "data": {"uri": "nope://missing"},
    }


async def test_resource_not_found_is_32002_with_the_uri_in_legacy() -> None:
    error = error_of(await dispatcher().handle(legacy("resources/read", {"uri": "users://1/other"})))
    assert error["code"] == -32002
    assert error["data"] == {"uri": "users://1/other"}


async def test_read_without_a_uri_is_invalid_params() -> None:
    error = error_of(await dispatcher().handle(modern("resources/read", {"uri": 5})))
    assert error["code"] == -32602


async def test_failing_resource_is_an_internal_error_without_details() -> None:
    error = error_of(await _read("data://broken"))
    assert error["code"] == -32603
    assert "errorId" in error["data"]
    assert "disk" not in error["message"] and "/var" not in error["message"]


async def test_scoped_resources_are_not_found_for_principals_without_the_scope() -> None:
    assert error_of(await _read("admin://secrets", principal=Principal("bob")))["code"] == -32602
    assert result_of(await _read("admin://secrets", principal=Principal("root", frozenset({"admin"}))))[
        "contents"
    ]
    listed = result_of(await dispatcher().handle(modern("resources/list", principal=Principal("bob"))))
    assert "admin://secrets" not in [r["uri"] for r in listed["resources"]]


def test_resource_registration_errors() -> None:
    server = MCPServer()

    @server.resource("a://x")
    def first() -> str:
        return ""

    with pytest.raises(ValueError, match="already registered"):
        server.resource("a://x")(first)
    with pytest.raises(ValueError, match="has no URI template variables"):

        @server.resource("a://y")
        def takes_args(name: str) -> str:
            return name

    with pytest.raises(ValueError, match="must match the handler's parameters"):

        @server.resource("a://{one}")
        def mismatch(other: str) -> str:
            return other

    with pytest.raises(TypeError, match="with a URI"):
        server.resource(first)  # type: ignore[arg-type]


# -- prompts --------------------------------------------------------------------------------------


async def test_prompts_list_describes_arguments() -> None:
    prompts = result_of(await dispatcher().handle(modern("prompts/list")))["prompts"]
    by_name = {p["name"]: p for p in prompts}
    assert by_name["review"] == {
        "name": "review",
        "description": "Review some code.",
        "title": "Code review",
        "arguments": [
            {"name": "code", "required": True, "description": "The code to review."},
            {"name": "language", "required": False, "description": "Its language."},
        ],
    }
    assert "arguments" not in by_name["approval"]
    assert by_name["failing"]["description"] == "failing"


async def test_prompts_get_renders_messages_and_description() -> None:
    params = {"name": "review", "arguments": {"code": "print(1)", "language": "python"}}
    result = result_of(await dispatcher().handle(modern("prompts/get", params)))
    assert result["description"] == "Review some code."
    assert result["messages"] == [
        {"role": "user", "content": {"type": "text", "text": "Review this python:\nprint(1)"}}
    ]


async def test_prompt_messages_from_lists_of_messages_and_dicts() -> None:
    params = {"name": "conversation", "arguments": {"topic": "MCP"}}
    messages = result_of(await dispatcher().handle(modern("prompts/get", params)))["messages"]
    assert messages == [
        {"role": "user", "content": {"type": "text", "text": "Tell me about MCP"}},
        {"role": "assistant", "content": {"type": "text", "text": "Gladly."}},
        {"role": "user", "content": {"type": "text", "text": "More, please."}},
        {"role": "assistant", "content": {"type": "text", "text": "Sure."}},
    ]


async def test_unknown_prompt_is_invalid_params() -> None:
    error = error_of(await dispatcher().handle(modern("prompts/get", {"name": "nope"})))
    assert error["code"] == -32602
    assert error["message"] == "Unknown prompt: 'nope'"


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        ({}, "code: Field required"),
        ({"code": 5}, "code: Input should be a valid string"),
        ({"code": "x", "extra": "y"}, "extra: Extra inputs are not permitted"),
    ],
)
async def test_bad_prompt_arguments_are_invalid_params(arguments: dict[str, Any], fragment: str) -> None:
    error = error_of(
        await dispatcher().handle(modern("prompts/get", {"name": "review", "arguments": arguments}))
    )
    assert error["code"] == -32602
    assert error["message"].startswith("Invalid arguments for prompt 'review'")
    assert fragment in error["message"]


async def test_prompt_raising_invalid_params_is_reported_as_such() -> None:
    response = await dispatcher().handle(
        modern("prompts/get", {"name": "picky", "arguments": {"number": "x"}})
    )
    assert error_of(response) == {"code": -32602, "message": "number must be digits"}


async def test_failing_prompt_is_an_internal_error_without_details() -> None:
    error = error_of(await dispatcher().handle(modern("prompts/get", {"name": "failing"})))
    assert error["code"] == -32603
    assert "/opt/secret" not in error["message"]


async def test_legacy_prompts_behave_the_same() -> None:
    d = dispatcher()
    result = result_of(await d.handle(legacy("prompts/get", {"name": "review", "arguments": {"code": "x"}})))
    assert result["messages"][0]["content"]["text"] == "Review this python:\nx"
    assert error_of(await d.handle(legacy("prompts/get", {"name": "nope"})))["code"] == -32602


async def test_prompt_return_shapes_become_messages() -> None:
    server = MCPServer()

    @server.prompt(description="Explicit", icons=[{"src": "https://example.com/p.png"}])
    def several() -> list[str]:
        return ["first", "second"]

    @server.prompt()
    def picture() -> Image:
        return Image(b"GIF89a", "image/gif")

    @server.prompt()
    def block_message() -> dict[str, Any]:
        return {"role": "assistant", "content": {"type": "text", "text": "as is"}}

    d = dispatcher(server)
    listed = {p["name"]: p for p in result_of(await d.handle(modern("prompts/list")))["prompts"]}
    assert listed["several"]["icons"] == [{"src": "https://example.com/p.png"}]
    assert listed["several"]["description"] == "Explicit"
    texts = result_of(await d.handle(modern("prompts/get", {"name": "several"})))
    assert [m["content"]["text"] for m in texts["messages"]] == ["first", "second"]
    assert texts["description"] == "Explicit"
    picture_result = result_of(await d.handle(modern("prompts/get", {"name": "picture"})))
    assert picture_result["messages"][0]["content"]["type"] == "image"
    block = result_of(await d.handle(modern("prompts/get", {"name": "block_message"})))
    assert block["messages"] == [{"role": "assistant", "content": {"type": "text", "text": "as is"}}]


async def test_static_resource_handlers_may_take_the_context() -> None:
    server = MCPServer()

    @server.resource("whoami://me")
    async def whoami(ctx: Context) -> str:
        return f"{ctx.era} request {ctx.request_id}"

    result = result_of(
        await dispatcher(server).handle(modern("resources/read", {"uri": "whoami://me"}, request_id=4))
    )
    assert result["contents"][0]["text"] == "modern request 4"


def test_prompt_registration_errors() -> None:
    server = MCPServer()

    @server.prompt()
    def once() -> str:
        return ""

    with pytest.raises(ValueError, match="already registered"):
        server.add_prompt(once)
    with pytest.raises(TypeError, match="parentheses"):
        server.prompt(once)  # type: ignore[arg-type]
    server.remove_prompt("once")
    with pytest.raises(KeyError):
        server.remove_prompt("once")


# -- pagination -----------------------------------------------------------------------------------


def _many_tools(count: int) -> MCPServer:
    server = MCPServer("many")

    def noop() -> None:
        return None

    for index in range(count):
        server.add_tool(noop, name=f"tool_{index:03d}")
    return server


async def test_tools_list_pages_with_a_stable_next_cursor() -> None:
    d = dispatcher(_many_tools(250))
    first = result_of(await d.handle(modern("tools/list")))
    assert len(first["tools"]) == 100
    assert first["tools"][0]["name"] == "tool_000"
    cursor = first["nextCursor"]
    assert isinstance(cursor, str) and cursor
    second = result_of(await d.handle(modern("tools/list", {"cursor": cursor})))
    again = result_of(await d.handle(modern("tools/list", {"cursor": cursor})))
    assert second["tools"] == again["tools"]
    assert second["nextCursor"] == again["nextCursor"]
    assert second["tools"][0]["name"] == "tool_100"
    last = result_of(await d.handle(modern("tools/list", {"cursor": second["nextCursor"]})))
    assert [t["name"] for t in last["tools"]] == [f"tool_{i}" for i in range(200, 250)]
    assert "nextCursor" not in last
    for page in (first, second, last):
        assert (page["ttlMs"], page["cacheScope"]) == (0, "public")


async def test_exactly_one_full_page_has_no_next_cursor() -> None:
    result = result_of(await dispatcher(_many_tools(100)).handle(modern("tools/list")))
    assert len(result["tools"]) == 100
    assert "nextCursor" not in result


async def test_empty_cursor_means_the_first_page() -> None:
    d = dispatcher(_many_tools(120))
    assert result_of(await d.handle(modern("tools/list", {"cursor": ""})))["tools"][0]["name"] == "tool_000"


@pytest.mark.parametrize("cursor", ["not-a-cursor!", "b2s", "x" * 65, 5, ["a"], "bzoxMDAw"])
async def test_invalid_cursor_is_invalid_params(cursor: object) -> None:
    d = dispatcher(_many_tools(120))
    error = error_of(await d.handle(modern("tools/list", {"cursor": cursor})))
    assert error == {"code": -32602, "message": "Invalid cursor"}


async def test_legacy_lists_paginate_too() -> None:
    d = dispatcher(_many_tools(150))
    first = result_of(await d.handle(legacy("tools/list")))
    second = result_of(await d.handle(legacy("tools/list", {"cursor": first["nextCursor"]})))
    assert len(first["tools"]) + len(second["tools"]) == 150
    assert error_of(await d.handle(legacy("tools/list", {"cursor": "garbage"})))["code"] == -32602


async def test_page_size_is_configurable_for_every_list() -> None:
    d = dispatcher(build_server(), page_size=2)
    for method, key in [
        ("tools/list", "tools"),
        ("prompts/list", "prompts"),
        ("resources/list", "resources"),
        ("resources/templates/list", "resourceTemplates"),
    ]:
        seen: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            params = {"cursor": cursor} if cursor is not None else {}
            page = result_of(await d.handle(modern(method, params)))
            assert len(page[key]) <= 2
            seen.extend(page[key])
            cursor = page.get("nextCursor")
            if cursor is None:
                break
        full = result_of(await dispatcher(build_server()).handle(modern(method)))[key]
        assert seen == full, method


def test_paginate_cursors_are_opaque_offsets() -> None:
    items = [{"n": i} for i in range(5)]
    page, cursor = paginate(items, None, 2)
    assert page == [{"n": 0}, {"n": 1}]
    assert cursor is not None and "2" not in cursor
    page, cursor = paginate(items, cursor, 2)
    assert page == [{"n": 2}, {"n": 3}]
    page, cursor = paginate(items, cursor, 2)
    assert page == [{"n": 4}]
    assert cursor is None
