"""The MCP endpoint in-process: status codes, headers and bodies for both eras."""

from __future__ import annotations

from typing import Annotated, Any

import anyio
import pytest
from pydantic import Field

from mcpserve import Context, MCPServer
from mcpserve.config import load_settings
from mcpserve.runtime import build_http_app
from mcpserve.transports.http.app import HttpApp
from tests.support.asgi import META, MODERN_HEADERS, open_request, request, rpc

pytestmark = pytest.mark.anyio


def make_server() -> MCPServer:
    server = MCPServer("endpoint-test")

    @server.tool()
    def echo(text: str) -> str:
        """Echo the text."""
        return text

    @server.tool()
    def forecast(region: Annotated[str, Field(json_schema_extra={"x-mcp-header": "Region"})]) -> str:
        """Weather for a region."""
        return f"sunny in {region}"

    @server.tool()
    async def slow_progress(ctx: Context) -> str:
        """Reports progress twice."""
        await ctx.report_progress(1, 2)
        await ctx.report_progress(2, 2)
        return "done"

    @server.resource("test://watched")
    def watched() -> str:
        return "watched"

    return server


@pytest.fixture
def app() -> HttpApp:
    return build_http_app(
        make_server(), load_settings({"auth": "none", "max_sessions": 2, "max_body_bytes": 2048})
    )


def call(name: str, arguments: dict[str, Any], meta: dict[str, Any] | None = None) -> bytes:
    return rpc("tools/call", {"name": name, "arguments": arguments, "_meta": {**META, **(meta or {})}})


def modern(method: str, name: str | None = None, **extra: str) -> dict[str, str]:
    headers = {**MODERN_HEADERS, "mcp-method": method, **extra}
    if name is not None:
        headers["mcp-name"] = name
    return headers


async def test_modern_tool_call_answers_json(app: HttpApp) -> None:
    reply = await request(
        app, "POST", headers=modern("tools/call", "echo"), body=call("echo", {"text": "hi"})
    )
    assert reply.status == 200
    assert reply.headers["content-type"] == "application/json"
    result = reply.json()["result"]
    assert result["structuredContent"] == {"result": "hi"}
    assert result["resultType"] == "complete"


async def test_progress_switches_to_sse(app: HttpApp) -> None:
    body = call("slow_progress", {}, {"progressToken": "p1"})
    reply = await request(app, "POST", headers=modern("tools/call", "slow_progress"), body=body)
    assert reply.headers["content-type"] == "text/event-stream"
    assert reply.headers["x-accel-buffering"] == "no"
    assert reply.headers["cache-control"] == "no-cache"
    events = reply.events()
    assert [e["params"]["progress"] for e in events[:-1]] == [1, 2]
    assert events[-1]["result"]["content"][0]["text"] == "done"


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({"accept": "application/json"}, 406, -32600),
        ({"content-type": "text/plain"}, 415, -32600),
    ],
)
async def test_request_shape_errors(app: HttpApp, headers: dict[str, str], status: int, code: int) -> None:
    reply = await request(app, "POST", headers={**modern("tools/list"), **headers}, body=rpc("tools/list"))
    assert reply.status == status
    assert reply.json()["error"]["code"] == code


async def test_body_over_limit_is_413(app: HttpApp) -> None:
    body = call("echo", {"text": "x" * 4096})
    reply = await request(app, "POST", headers=modern("tools/call", "echo"), body=body)
    assert reply.status == 413


async def test_a_body_in_pieces_is_read_whole_and_its_size_counted_across_them(app: HttpApp) -> None:
    body = call("echo", {"text": "y" * 1000})
    reply = await request(app, "POST", headers=modern("tools/call", "echo"), body=body, chunk_size=100)
    assert reply.status == 200
    assert reply.json()["result"]["structuredContent"] == {"result": "y" * 1000}
    body = call("echo", {"text": "x" * 4096})
    reply = await request(app, "POST", headers=modern("tools/call", "echo"), body=body, chunk_size=1000)
    assert reply.status == 413


async def test_invalid_json_and_batches(app: HttpApp) -> None:
    reply = await request(app, "POST", headers=modern("tools/list"), body=b"{nope")
    assert (reply.status, reply.json()["error"]["code"], reply.json()["id"]) == (400, -32700, None)
    reply = await request(app, "POST", headers=modern("tools/list"), body=b"[" + rpc("tools/list") + b"]")
    assert (reply.status, reply.json()["error"]["code"]) == (400, -32600)


async def test_notifications_get_202(app: HttpApp) -> None:
    body = rpc("notifications/cancelled", {"requestId": 9}, request_id=None)
    reply = await request(app, "POST", headers=modern("notifications/cancelled"), body=body)
    assert (reply.status, reply.body) == (202, b"")


@pytest.mark.parametrize(
    "headers",
    [
        {"mcp-method": "prompts/list"},
        {"mcp-name": "wrong_tool"},
        {"mcp-protocol-version": "2025-11-25", "mcp-session-id": ""},
        {"mcp-name": "=?base64?ZWNobw?=x"},
        {"mcp-name": "=?base64?ZWN!!obw==?="},
    ],
)
async def test_header_mismatch_is_400_32020(app: HttpApp, headers: dict[str, str]) -> None:
    merged = {**modern("tools/call", "echo"), **headers}
    merged = {k: v for k, v in merged.items() if not (k == "mcp-session-id" and not v)}
    reply = await request(app, "POST", headers=merged, body=call("echo", {"text": "hi"}))
    assert reply.status == 400
    assert reply.json()["error"]["code"] == -32020
    assert reply.json()["id"] == 1


async def test_missing_method_or_name_header(app: HttpApp) -> None:
    headers = {k: v for k, v in modern("tools/call", "echo").items() if k != "mcp-method"}
    reply = await request(app, "POST", headers=headers, body=call("echo", {"text": "hi"}))
    assert reply.json()["error"]["code"] == -32020
    headers = modern("tools/call")
    reply = await request(app, "POST", headers=headers, body=call("echo", {"text": "hi"}))
    assert reply.json()["error"]["code"] == -32020


async def test_base64_and_whitespace_header_values_are_decoded(app: HttpApp) -> None:
    headers = modern("tools/call", "=?base64?ZWNobw==?=")
    reply = await request(app, "POST", headers=headers, body=call("echo", {"text": "hi"}))
    assert reply.status == 200
    headers = modern("tools/call", "  echo ")
    reply = await request(app, "POST", headers=headers, body=call("echo", {"text": "hi"}))
    assert reply.status == 200


async def test_x_mcp_header_parameters_are_checked(app: HttpApp) -> None:
    body = call("forecast", {"region": "eu-west"})
    missing = await request(app, "POST", headers=modern("tools/call", "forecast"), body=body)
    assert missing.json()["error"]["code"] == -32020
    wrong = await request(
        app, "POST", headers=modern("tools/call", "forecast", **{"mcp-param-region": "us"}), body=body
    )
    assert wrong.json()["error"]["code"] == -32020
    good = await request(
        app, "POST", headers=modern("tools/call", "forecast", **{"mcp-param-region": "eu-west"}), body=body
    )
    assert good.json()["result"]["content"][0]["text"] == "sunny in eu-west"


@pytest.mark.parametrize(
    ("method", "params", "status", "code"),
    [
        ("ping", {"_meta": META}, 404, -32601),
        ("tools/list", {}, 400, -32602),
        ("tools/list", {"_meta": {**META, "io.modelcontextprotocol/protocolVersion": "v999"}}, 400, -32022),
    ],
)
async def test_modern_errors_map_to_statuses(
    app: HttpApp, method: str, params: dict[str, Any], status: int, code: int
) -> None:
    version = params.get("_meta", {}).get("io.modelcontextprotocol/protocolVersion", "2026-07-28")
    headers = modern(method, **{"mcp-protocol-version": version})
    reply = await request(app, "POST", headers=headers, body=rpc(method, params))
    assert (reply.status, reply.json()["error"]["code"]) == (status, code)


async def test_get_and_delete_without_session_are_405(app: HttpApp) -> None:
    for method in ("GET", "DELETE"):
        reply = await request(app, method, headers={"accept": "text/event-stream"})
        assert reply.status == 405
    reply = await request(app, "PUT", headers={})
    assert reply.status == 405


async def test_dns_rebinding_defence(app: HttpApp) -> None:
    host = await request(
        app, "POST", headers={**modern("tools/list"), "host": "evil.example.com"}, body=b"{}"
    )
    assert host.status == 421
    origin = await request(app, "POST", headers={**modern("tools/list"), "origin": "http://evil.example.com"})
    assert origin.status == 403
    local = await request(
        app,
        "POST",
        headers={**modern("tools/list"), "origin": "http://localhost:3000"},
        body=rpc("tools/list", {"_meta": META}),
    )
    assert local.status == 200


async def test_forwarded_host_only_from_trusted_proxies() -> None:
    settings = load_settings(
        {"auth": "none", "allowed_hosts": ["mcp.example.com"], "trusted_proxies": ["10.0.0.0/8"]}
    )
    app = build_http_app(make_server(), settings)
    headers = {**modern("tools/list"), "host": "backend:8000", "x-forwarded-host": "mcp.example.com"}
    body = rpc("tools/list", {"_meta": META})
    assert (await request(app, "POST", headers=headers, body=body, client="10.1.2.3")).status == 200
    assert (await request(app, "POST", headers=headers, body=body, client="192.0.2.7")).status == 421


@pytest.mark.parametrize(("bind", "host"), [("10.1.2.3", "10.1.2.3:8000"), ("fe80::5", "[fe80::5]:8000")])
async def test_a_specific_bind_address_is_an_accepted_host(bind: str, host: str) -> None:
    settings = load_settings({"auth": "none", "allow_unauthenticated": True, "host": bind})
    app = build_http_app(make_server(), settings)
    body = rpc("tools/list", {"_meta": META})
    assert (
        await request(app, "POST", headers={**modern("tools/list"), "host": host}, body=body)
    ).status == 200
    other = {**modern("tools/list"), "host": "10.9.9.9:8000"}
    assert (await request(app, "POST", headers=other, body=body)).status == 421


async def test_health_and_unknown_paths(app: HttpApp) -> None:
    assert (await request(app, "GET", path="/health")).json() == {"status": "ok"}
    assert (await request(app, "GET", path="/nope")).status == 404


# -- 2025 era ---------------------------------------------------------------------------------------
LEGACY = {"content-type": "application/json", "accept": "application/json, text/event-stream"}


async def initialize(app: HttpApp) -> str:
    params = {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    }
    reply = await request(app, "POST", headers=LEGACY, body=rpc("initialize", params))
    assert reply.status == 200
    assert reply.json()["result"]["protocolVersion"] == "2025-06-18"
    session_id = reply.headers["mcp-session-id"]
    assert all(0x21 <= ord(c) <= 0x7E for c in session_id)
    note = rpc("notifications/initialized", request_id=None)
    headers = {**LEGACY, "mcp-session-id": session_id, "mcp-protocol-version": "2025-06-18"}
    assert (await request(app, "POST", headers=headers, body=note)).status == 202
    return session_id


def session_headers(session_id: str) -> dict[str, str]:
    return {**LEGACY, "mcp-session-id": session_id, "mcp-protocol-version": "2025-06-18"}


async def test_legacy_session_lifecycle(app: HttpApp) -> None:
    session_id = await initialize(app)
    listed = await request(app, "POST", headers=session_headers(session_id), body=rpc("tools/list"))
    assert [t["name"] for t in listed.json()["result"]["tools"]] == ["echo", "forecast", "slow_progress"]
    assert "resultType" not in listed.json()["result"]
    missing = await request(app, "POST", headers=LEGACY, body=rpc("tools/list"))
    assert missing.status == 400
    unknown = await request(app, "POST", headers=session_headers("nope"), body=rpc("tools/list"))
    assert unknown.status == 404
    bad_version = {**session_headers(session_id), "mcp-protocol-version": "1999-01-01"}
    assert (await request(app, "POST", headers=bad_version, body=rpc("ping"))).status == 400
    deleted = await request(app, "DELETE", headers=session_headers(session_id))
    assert deleted.status == 200
    after = await request(app, "POST", headers=session_headers(session_id), body=rpc("ping"))
    assert after.status == 404


async def test_legacy_method_errors_answer_200(app: HttpApp) -> None:
    session_id = await initialize(app)
    reply = await request(app, "POST", headers=session_headers(session_id), body=rpc("server/discover"))
    assert (reply.status, reply.json()["error"]["code"]) == (200, -32601)
    missing = await request(
        app, "POST", headers=session_headers(session_id), body=rpc("resources/read", {"uri": "test://none"})
    )
    assert missing.json()["error"] == {
        "code": -32002,
        "message": "Resource not found: test://none",
        "data": {"uri": "test://none"},
    }


async def test_session_capacity_gives_503_with_jsonrpc_error(app: HttpApp) -> None:
    await initialize(app)
    await initialize(app)
    params = {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    }
    reply = await request(app, "POST", headers=LEGACY, body=rpc("initialize", params, request_id=7))
    assert reply.status == 503
    assert reply.json()["error"]["code"] == -31000
    assert reply.json()["id"] == 7


async def test_legacy_set_level_persists_in_the_session(app: HttpApp) -> None:
    session_id = await initialize(app)
    headers = session_headers(session_id)
    reply = await request(app, "POST", headers=headers, body=rpc("logging/setLevel", {"level": "error"}))
    assert reply.json()["result"] == {}
    record = await app.endpoint.sessions.get(session_id)
    assert record is not None
    assert record["logLevel"] == "error"


async def test_standalone_stream_delivers_changes_and_is_exclusive(app: HttpApp) -> None:
    session_id = await initialize(app)
    headers = {**session_headers(session_id), "accept": "text/event-stream"}
    subscribe = rpc("resources/subscribe", {"uri": "test://watched"})
    await request(app, "POST", headers=session_headers(session_id), body=subscribe)
    async with open_request(app, "GET", headers=headers) as stream:
        with anyio.fail_after(5):
            while b"retry:" not in stream.body:
                await anyio.wait_all_tasks_blocked()
        second = await request(app, "GET", headers=headers)
        assert second.status == 409
        server = app.endpoint.dispatcher.server
        await server.notify_resource_updated("test://other")
        await server.notify_resource_updated("test://watched")
        await server.notify_tools_changed()
        with anyio.fail_after(5):
            while stream.body.count(b"data: {") < 2:
                await anyio.wait_all_tasks_blocked()
    assert stream.headers["content-type"] == "text/event-stream"
    methods = [(e["method"], e["params"].get("uri")) for e in stream.events()]
    assert methods == [
        ("notifications/resources/updated", "test://watched"),
        ("notifications/tools/list_changed", None),
    ]


async def test_resumption_replays_only_that_stream(app: HttpApp) -> None:
    session_id = await initialize(app)
    body = rpc(
        "tools/call", {"name": "slow_progress", "arguments": {}, "_meta": {"progressToken": 5}}, request_id=3
    )
    first = await request(app, "POST", headers=session_headers(session_id), body=body)
    ids = [line[4:] for line in first.body.decode().split("\n") if line.startswith("id: ")]
    assert len(ids) == 4  # priming event, two progress notifications, the result
    headers = {**session_headers(session_id), "accept": "text/event-stream", "last-event-id": ids[1]}
    replay = await request(app, "GET", headers=headers)
    replayed = replay.events()
    assert [e.get("params", {}).get("progress") for e in replayed[:1]] == [2]
    assert replayed[-1]["id"] == 3
    unknown = await request(app, "GET", headers={**headers, "last-event-id": "nope/1"})
    assert unknown.status == 404
