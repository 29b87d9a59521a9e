"""The 2026-07-28 era through the Dispatcher: discovery, result shapes, errors, progress and logging."""

from __future__ import annotations

import pytest

from mcpserve import MCPServer
from mcpserve.principal import Principal
from mcpserve.protocol.envelope import SERVER_INFO_KEY
from mcpserve.server.dispatch import CacheHint
from mcpserve.types import JSONObject
from tests.server.support import (
    RecordingOutbound,
    build_server,
    dispatcher,
    error_of,
    modern,
    result_of,
    text_of,
)

pytestmark = pytest.mark.anyio

SERVER_INFO = {"name": "test-server", "version": "9.9.9", "title": "Test Server"}


async def test_discover_advertises_versions_capabilities_and_server_info() -> None:
    response = await dispatcher().handle(modern("server/discover", request_id="d-1"))
    assert response["jsonrpc"] == "2.0"
    assert response["id"] == "d-1"
    assert result_of(response) == {
        "supportedVersions": ["2026-07-28"],
        "capabilities": {
            "tools": {"listChanged": True},
            "prompts": {"listChanged": True},
            "resources": {"subscribe": True, "listChanged": True},
            "logging": {},
            "completions": {},
        },
        "instructions": "Use the tools.",
        "resultType": "complete",
        "ttlMs": 0,
        "cacheScope": "public",
        "_meta": {SERVER_INFO_KEY: SERVER_INFO},
    }


async def test_server_info_includes_the_website_when_given() -> None:
    server = MCPServer("site", version="1.0", website_url="https://example.com")
    result = result_of(await dispatcher(server).handle(modern("server/discover")))
    assert result["_meta"][SERVER_INFO_KEY] == {
        "name": "site",
        "version": "1.0",
        "websiteUrl": "https://example.com",
    }


def test_server_run_hands_itself_to_the_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[object, dict[str, object]]] = []
    monkeypatch.setattr("mcpserve.runtime.serve", lambda server, **options: calls.append((server, options)))
    server = build_server()
    server.run("stdio", tool_timeout=5)
    assert calls == [(server, {"transport": "stdio", "tool_timeout": 5})]


async def test_discover_omits_completions_and_instructions_the_server_does_not_have() -> None:
    server = build_server(completion=False)
    server.instructions = None
    result = result_of(await dispatcher(server).handle(modern("server/discover")))
    assert "completions" not in result["capabilities"]
    assert "instructions" not in result


@pytest.mark.parametrize(
    "method",
    [
        "initialize",
        "ping",
        "logging/setLevel",
        "resources/subscribe",
        "resources/unsubscribe",
        "notifications/initialized",
        "tasks/list",
        "no/such/method",
    ],
)
async def test_removed_and_unknown_methods_are_method_not_found(method: str) -> None:
    response = await dispatcher().handle(
        modern(method, {"level": "info", "uri": "config://app"}, request_id=5)
    )
    assert response["id"] == 5
    error = error_of(response)
    assert error["code"] == -32601
    assert method in error["message"]


@pytest.mark.parametrize(
    ("method", "params", "scope"),
    [
        ("tools/list", {}, "public"),
        ("prompts/list", {}, "public"),
        ("resources/list", {}, "public"),
        ("resources/templates/list", {}, "public"),
        ("resources/read", {"uri": "config://app"}, "private"),
    ],
)
async def test_cacheable_results_carry_ttl_and_scope(method: str, params: dict[str, str], scope: str) -> None:
    result = result_of(await dispatcher().handle(modern(method, params)))
    assert result["resultType"] == "complete"
    assert result["ttlMs"] == 0
    assert result["cacheScope"] == scope
    assert result["_meta"] == {SERVER_INFO_KEY: SERVER_INFO}


async def test_cache_hints_are_configurable_per_method() -> None:
    hints = {"tools/list": CacheHint(30_000, "private")}
    result = result_of(await dispatcher(cache_hints=hints).handle(modern("tools/list")))
    assert (result["ttlMs"], result["cacheScope"]) == (30_000, "private")
    other = result_of(await dispatcher(cache_hints=hints).handle(modern("prompts/list")))
    assert (other["ttlMs"], other["cacheScope"]) == (0, "public")


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("tools/call", {"name": "add", "arguments": {"a": 1, "b": 2}}),
        ("prompts/get", {"name": "review", "arguments": {"code": "x"}}),
        (
            "completion/complete",
            {"ref": {"type": "ref/prompt", "name": "review"}, "argument": {"name": "x", "value": ""}},
        ),
    ],
)
async def test_non_cacheable_results_have_result_type_and_server_info_but_no_hints(
    method: str, params: dict[str, object]
) -> None:
    result = result_of(await dispatcher().handle(modern(method, params)))
    assert result["resultType"] == "complete"
    assert result["_meta"][SERVER_INFO_KEY] == SERVER_INFO
    assert "ttlMs" not in result
    assert "cacheScope" not in result


async def test_tools_list_is_deterministic_registration_order() -> None:
    first = result_of(await dispatcher().handle(modern("tools/list")))
    second = result_of(await dispatcher().handle(modern("tools/list")))
    names = [tool["name"] for tool in first["tools"]]
    assert names == [tool["name"] for tool in second["tools"]]
    assert names[:3] == ["add", "greet", "weather"]
    assert "nextCursor" not in first


async def test_scoped_tools_are_hidden_from_principals_without_the_scope() -> None:
    d = dispatcher()
    anonymous = [t["name"] for t in result_of(await d.handle(modern("tools/list")))["tools"]]
    bob = Principal("bob")
    admin = Principal("root", frozenset({"admin"}))
    for_bob = [t["name"] for t in result_of(await d.handle(modern("tools/list", principal=bob)))["tools"]]
    for_admin = [t["name"] for t in result_of(await d.handle(modern("tools/list", principal=admin)))["tools"]]
    assert "admin_only" in anonymous
    assert "admin_only" not in for_bob
    assert "admin_only" in for_admin
    hidden = result_of(await d.handle(modern("tools/call", {"name": "admin_only"}, principal=bob)))
    assert hidden["isError"] is True
    assert text_of(hidden) == "Unknown tool: 'admin_only'"
    allowed = result_of(await d.handle(modern("tools/call", {"name": "admin_only"}, principal=admin)))
    assert allowed["structuredContent"] == {"result": "secret"}


async def test_call_context_exposes_the_request_facts() -> None:
    call = modern("tools/call", {"name": "facts"}, request_id="r-9", capabilities={"roots": {}})
    call.principal = Principal("carol")
    result = result_of(await dispatcher().handle(call))
    assert result["structuredContent"] == {
        "id": "r-9",
        "era": "modern",
        "version": "2026-07-28",
        "capabilities": {"roots": {}},
        "client": {"name": "t", "version": "0"},
        "principal": "carol",
        "session": None,
        "headers": None,
        "server": "test-server",
    }


@pytest.mark.parametrize(
    "params",
    [{}, {"name": 5}, {"name": "add", "arguments": [1, 2]}, {"name": "add", "arguments": "a=1"}],
)
async def test_tools_call_that_does_not_fit_the_schema_is_invalid_params(params: dict[str, object]) -> None:
    error = error_of(await dispatcher().handle(modern("tools/call", params)))
    assert error["code"] == -32602


async def test_progress_is_sent_only_with_a_token_and_strictly_increases() -> None:
    outbound = RecordingOutbound()
    call = modern("tools/call", {"name": "progress"}, progress_token="p-1", outbound=outbound)
    assert result_of(await dispatcher().handle(call))["structuredContent"] == {"result": "done"}
    progress = outbound.of("notifications/progress")
    assert [p["progress"] for p in progress] == [1, 2, 3.5]
    assert all(p["progressToken"] == "p-1" and p["total"] == 4 for p in progress)
    assert progress[0]["message"] == "step 1"

    silent = RecordingOutbound()
    await dispatcher().handle(modern("tools/call", {"name": "progress"}, outbound=silent))
    assert silent.notifications == []


async def test_integer_progress_tokens_are_echoed_unchanged() -> None:
    outbound = RecordingOutbound()
    await dispatcher().handle(modern("tools/call", {"name": "progress"}, progress_token=0, outbound=outbound))
    assert {p["progressToken"] for p in outbound.of("notifications/progress")} == {0}


async def test_log_messages_need_a_level_in_meta() -> None:
    outbound = RecordingOutbound()
    await dispatcher().handle(modern("tools/call", {"name": "chatty"}, outbound=outbound))
    assert outbound.notifications == []


async def test_log_messages_at_or_above_the_requested_level_are_sent() -> None:
    outbound = RecordingOutbound()
    call = modern("tools/call", {"name": "chatty"}, log_level="warning", outbound=outbound)
    await dispatcher().handle(call)
    messages = outbound.of("notifications/message")
    assert [(m["level"], m["data"]) for m in messages] == [
        ("warning", "warning message"),
        ("error", "error message"),
        ("warning", "w"),
        ("error", "e"),
    ]
    assert messages[0]["logger"] == "chatty"
    assert "logger" not in messages[2]


async def test_debug_level_receives_every_message() -> None:
    outbound = RecordingOutbound()
    await dispatcher().handle(modern("tools/call", {"name": "chatty"}, log_level="debug", outbound=outbound))
    levels = [m["level"] for m in outbound.of("notifications/message")]
    assert levels == ["debug", "info", "warning", "error", "info", "debug", "warning", "error"]
    assert outbound.of("notifications/message")[4]["data"] == {"structured": True}


async def test_completion_returns_values_total_and_has_more() -> None:
    d = dispatcher()
    params = {"ref": {"type": "ref/prompt", "name": "review"}, "argument": {"name": "language", "value": "p"}}
    result = result_of(await d.handle(modern("completion/complete", params)))
    assert result["completion"] == {"values": ["python", "perl"], "total": 2, "hasMore": False}


async def test_completion_caps_values_at_one_hundred() -> None:
    params = {"ref": {"type": "ref/prompt", "name": "review"}, "argument": {"name": "many", "value": ""}}
    completion = result_of(await dispatcher().handle(modern("completion/complete", params)))["completion"]
    assert len(completion["values"]) == 100
    assert completion["total"] == 150
    assert completion["hasMore"] is True


async def test_completion_passes_context_arguments_and_resource_references() -> None:
    d = dispatcher()
    params = {
        "ref": {"type": "ref/prompt", "name": "review"},
        "argument": {"name": "echo", "value": "v"},
        "context": {"arguments": {"code": "x"}},
    }
    assert result_of(await d.handle(modern("completion/complete", params)))["completion"]["values"] == [
        "v:{'code': 'x'}"
    ]
    resource = {
        "ref": {"type": "ref/resource", "uri": "users://{user_id}/profile"},
        "argument": {"name": "user_id", "value": "1"},
    }
    assert result_of(await d.handle(modern("completion/complete", resource)))["completion"] == {
        "values": [],
        "total": 0,
        "hasMore": False,
    }


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"ref": {"type": "ref/prompt", "name": "review"}},
        {"ref": "review", "argument": {"name": "a", "value": "b"}},
        {"ref": {"type": "ref/tool", "name": "add"}, "argument": {"name": "a", "value": "b"}},
        {"ref": {"type": "ref/prompt"}, "argument": {"name": "a", "value": "b"}},
        {"ref": {"type": "ref/prompt", "name": "review"}, "argument": {"name": "a"}},
        {"ref": {"type": "ref/prompt", "name": "review"}, "argument": {"name": 1, "value": "b"}},
        {"ref": {"type": "ref/prompt", "name": "no_such_prompt"}, "argument": {"name": "a", "value": "b"}},
        {"ref": {"type": "ref/resource", "uri": "nope://{x}"}, "argument": {"name": "x", "value": ""}},
    ],
)
async def test_malformed_completion_requests_are_invalid_params(params: dict[str, object]) -> None:
    assert error_of(await dispatcher().handle(modern("completion/complete", params)))["code"] == -32602


async def test_completion_without_a_handler_is_method_not_found() -> None:
    d = dispatcher(build_server(completion=False))
    params = {"ref": {"type": "ref/prompt", "name": "review"}, "argument": {"name": "language", "value": ""}}
    error = error_of(await d.handle(modern("completion/complete", params)))
    assert error["code"] == -32601
    assert "completion/complete" in error["message"]


async def test_handler_faults_outside_tools_are_internal_errors_with_an_error_id() -> None:
    server = build_server()

    async def explode(params: JSONObject, principal: Principal | None) -> JSONObject:
        raise RuntimeError("database password is hunter2")

    server.complete = explode  # type: ignore[method-assign]
    params = {"ref": {"type": "ref/prompt", "name": "review"}, "argument": {"name": "language", "value": ""}}
    error = error_of(await dispatcher(server).handle(modern("completion/complete", params)))
    assert error["code"] == -32603
    assert error["message"] == f"Internal error (error id {error['data']['errorId']})"
    assert "hunter2" not in str(error)
