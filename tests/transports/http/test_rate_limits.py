"""Rate limits at the HTTP endpoint, in-process: 429s, fields, keys, windows, concurrency."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import anyio
import pytest

from mcpserve import MCPServer
from mcpserve.config import load_settings
from mcpserve.ratelimit.base import Budget, Decision
from mcpserve.runtime import build_http_app
from mcpserve.transports.http.app import HttpApp
from tests.support.asgi import META, MODERN_HEADERS, open_request, request, rpc

pytestmark = pytest.mark.anyio
LEGACY = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
LIMIT_FIELDS = (
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "ratelimit",
    "ratelimit-policy",
)


class Gates:
    """Lets a test hold a tool open, to fill its concurrency slots."""

    def __init__(self) -> None:
        self.release = anyio.Event()
        self.entered = 0
        self.entered_event = anyio.Event()


def make_server(gates: Gates | None = None) -> MCPServer:
    server = MCPServer("limits-test")

    @server.tool()
    def echo(text: str) -> str:
        """Echo the text."""
        return text

    @server.tool()
    def costly(n: int) -> int:
        """An expensive tool with limits of its own."""
        return n * 2

    @server.tool()
    async def hold() -> str:
        """Stays running until the test lets it finish."""
        assert gates is not None
        gates.entered += 1
        gates.entered_event.set()
        await gates.release.wait()
        return "released"

    return server


def make_app(gates: Gates | None = None, **settings: Any) -> HttpApp:
    return build_http_app(make_server(gates), load_settings({"auth": "none", **settings}))


def modern_call(name: str, arguments: dict[str, Any], request_id: int = 1) -> tuple[dict[str, str], bytes]:
    headers = {**MODERN_HEADERS, "mcp-method": "tools/call", "mcp-name": name}
    body = rpc("tools/call", {"name": name, "arguments": arguments, "_meta": META}, request_id=request_id)
    return headers, body


async def call_tool(app: HttpApp, name: str, arguments: dict[str, Any], **options: Any) -> Any:
    headers, body = modern_call(name, arguments, options.pop("request_id", 1))
    return await request(app, "POST", headers={**headers, **options.pop("extra", {})}, body=body, **options)


def assert_limit_fields(reply: Any) -> None:
    for name in LIMIT_FIELDS:
        assert name in reply.headers, name
    assert re.fullmatch(
        r'("[^"]+";q=\d+(;w=\d+)?)(, "[^"]+";q=\d+(;w=\d+)?)*', reply.headers["ratelimit-policy"]
    )
    assert re.fullmatch(r'("[^"]+";r=\d+;t=\d+)(, "[^"]+";r=\d+;t=\d+)*', reply.headers["ratelimit"])


def assert_limited(reply: Any, request_id: int | None) -> None:
    assert reply.status == 429
    assert_limit_fields(reply)
    retry = int(reply.headers["retry-after"])
    assert retry >= 1
    assert reply.json() == {
        "jsonrpc": "2.0",
        "id": request_id,
        "error": {
            "code": -31001,
            "message": f"Rate limit exceeded; retry after {retry} s",
            "data": {"retryAfter": retry},
        },
    }


async def test_per_minute_budget_per_caller_with_fields_on_every_response() -> None:
    app = make_app(rate_limit_per_minute=3, rate_limit_per_hour=0)
    replies = [await call_tool(app, "echo", {"text": "x"}, request_id=n) for n in range(5)]
    assert [r.status for r in replies] == [200, 200, 200, 429, 429]
    for reply in replies[:3]:
        assert_limit_fields(reply)
        assert "retry-after" not in reply.headers
    assert [r.headers["x-ratelimit-remaining"] for r in replies] == ["2", "1", "0", "0", "0"]
    assert replies[0].headers["ratelimit-policy"] == '"minute";q=3;w=60'
    assert_limited(replies[3], 3)
    assert_limited(replies[4], 4)
    # Another client address has its own budget; other methods are not limited.
    assert (await call_tool(app, "echo", {"text": "x"}, client="10.1.1.1")).status == 200
    listed = await request(
        app,
        "POST",
        headers={**MODERN_HEADERS, "mcp-method": "tools/list"},
        body=rpc("tools/list", {"_meta": META}),
    )
    assert listed.status == 200
    assert "x-ratelimit-limit" not in listed.headers


async def test_hour_budget_refuses_before_the_minute_one() -> None:
    app = make_app(rate_limit_per_minute=10, rate_limit_per_hour=2)
    replies = [await call_tool(app, "echo", {"text": "x"}) for _ in range(3)]
    assert [r.status for r in replies] == [200, 200, 429]
    limited = replies[2]
    assert_limited(limited, 1)
    assert limited.headers["x-ratelimit-limit"] == "2"  # the hour budget is the one that refused
    assert int(limited.headers["retry-after"]) > 3500
    assert limited.headers["ratelimit-policy"] == '"minute";q=10;w=60, "hour";q=2;w=3600'
    # The refused call consumed nothing: the minute budget still shows 8 left.
    assert re.match(r'"minute";r=8;t=\d+, "hour";r=0;t=\d+', limited.headers["ratelimit"])


async def test_per_tool_budget() -> None:
    app = make_app(
        rate_limit_per_minute=100, rate_limit_per_hour=0, tool_rate_limits={"costly": {"per_minute": 2}}
    )
    costly = [await call_tool(app, "costly", {"n": 1}) for _ in range(3)]
    assert [r.status for r in costly] == [200, 200, 429]
    assert costly[2].headers["x-ratelimit-limit"] == "2"
    assert '"costly/minute";q=2;w=60' in costly[2].headers["ratelimit-policy"]
    assert (await call_tool(app, "echo", {"text": "still fine"})).status == 200


async def test_limited_from_headers_before_the_body_is_parsed() -> None:
    app = make_app(rate_limit_per_minute=1, rate_limit_per_hour=0)
    assert (await call_tool(app, "echo", {"text": "x"})).status == 200
    headers, _ = modern_call("echo", {})
    garbage = await request(app, "POST", headers=headers, body=b'{"id": 9, not json')
    assert garbage.status == 429  # refused on its headers: the body was never parsed as a request
    assert garbage.json()["id"] is None
    # A body claiming another tool than its headers is still checked against them (-32020).
    fresh = make_app(
        rate_limit_per_minute=5, rate_limit_per_hour=0, tool_rate_limits={"costly": {"per_minute": 1}}
    )
    _, echo_body = modern_call("echo", {"text": "x"})
    mismatch = await request(fresh, "POST", headers=modern_call("costly", {})[0], body=echo_body)
    assert mismatch.status == 400
    assert mismatch.json()["error"]["code"] == -32020
    assert (await call_tool(fresh, "costly", {"n": 1})).status == 429  # the lie was counted as costly


async def test_concurrency_cap_per_tool() -> None:
    gates = Gates()
    app = make_app(
        gates, rate_limit_per_minute=0, rate_limit_per_hour=0, tool_rate_limits={"hold": {"concurrency": 1}}
    )
    headers, body = modern_call("hold", {})
    async with open_request(app, "POST", headers=headers, body=body) as first:
        with anyio.fail_after(5):
            await gates.entered_event.wait()
        second = await call_tool(app, "hold", {}, request_id=2)
        assert_limited(second, 2)
        assert second.headers["ratelimit-policy"] == '"hold/concurrency";q=1'
        gates.release.set()
        with anyio.fail_after(5):
            await first.done.wait()
    assert first.status == 200
    assert first.headers["x-ratelimit-remaining"] == "0"
    assert gates.entered == 1
    assert (await call_tool(app, "hold", {}, request_id=3)).status == 200  # the slot came back


async def test_trusted_proxy_forwards_the_client_address() -> None:
    app = make_app(rate_limit_per_minute=1, rate_limit_per_hour=0, trusted_proxies=["10.0.0.0/8"])
    proxy = {"client": "10.0.0.2"}
    first = await call_tool(app, "echo", {"text": "x"}, extra={"x-forwarded-for": "203.0.113.5"}, **proxy)
    other = await call_tool(app, "echo", {"text": "x"}, extra={"x-forwarded-for": "203.0.113.6"}, **proxy)
    assert (first.status, other.status) == (200, 200)
    # A client cannot choose its own address: the hop our proxy appended is the one that counts.
    spoofed = await call_tool(
        app, "echo", {"text": "x"}, extra={"x-forwarded-for": "1.2.3.4, 203.0.113.5"}, **proxy
    )
    assert spoofed.status == 429
    # An untrusted peer's X-Forwarded-For is ignored.
    direct = await call_tool(
        app, "echo", {"text": "x"}, extra={"x-forwarded-for": "203.0.113.9"}, client="192.0.2.1"
    )
    assert direct.status == 200
    assert (await call_tool(app, "echo", {"text": "x"}, client="192.0.2.1")).status == 429


async def test_legacy_session_calls_are_limited_after_parsing() -> None:
    app = make_app(rate_limit_per_minute=2, rate_limit_per_hour=0)
    params = {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    }
    init = await request(app, "POST", headers=LEGACY, body=rpc("initialize", params))
    session = {
        **LEGACY,
        "mcp-session-id": init.headers["mcp-session-id"],
        "mcp-protocol-version": "2025-06-18",
    }
    body = rpc("tools/call", {"name": "echo", "arguments": {"text": "x"}}, request_id=7)
    replies = [await request(app, "POST", headers=session, body=body) for _ in range(3)]
    assert [r.status for r in replies] == [200, 200, 429]
    assert_limit_fields(replies[0])
    assert_limited(replies[2], 7)
    assert replies[2].headers["mcp-session-id"] == init.headers["mcp-session-id"]
    assert (await request(app, "POST", headers=session, body=rpc("ping", request_id=8))).status == 200


class _BrokenLimiter:
    async def hit(self, budgets: Sequence[Budget]) -> Decision:
        raise ConnectionError("limiter backend down")

    async def aclose(self) -> None:
        return None


async def test_limiter_outage_fails_open(caplog: pytest.LogCaptureFixture) -> None:
    app = make_app(rate_limit_per_minute=1, rate_limit_per_hour=0)
    gate = app.endpoint.limits
    assert gate is not None
    gate.limiter = _BrokenLimiter()  # type: ignore[attr-defined]
    replies = [await call_tool(app, "echo", {"text": "x"}) for _ in range(3)]
    assert [r.status for r in replies] == [200, 200, 200]
    assert "x-ratelimit-limit" not in replies[0].headers
    assert [r.message for r in caplog.records].count(
        "rate limiter unavailable; admitting calls unlimited"
    ) == 1


async def test_limits_off_builds_no_gate() -> None:
    assert make_app(rate_limit_per_minute=0, rate_limit_per_hour=0).endpoint.limits is None
    assert make_app().endpoint.limits is not None  # defaults: 60 per minute, 1000 per hour


async def test_authenticated_principals_have_budgets_of_their_own() -> None:
    # Same address, two API keys: the principal is the caller, not the address.
    app = make_app(
        auth="keys",
        api_keys=["alice-key-0123456789", "bob-key-0123456789"],
        rate_limit_per_minute=1,
        rate_limit_per_hour=0,
    )
    alice = {"authorization": "Bearer alice-key-0123456789"}
    bob = {"authorization": "Bearer bob-key-0123456789"}
    assert (await call_tool(app, "echo", {"text": "x"}, extra=alice)).status == 200
    assert_limited(await call_tool(app, "echo", {"text": "x"}, extra=alice), 1)
    assert (await call_tool(app, "echo", {"text": "x"}, extra=bob)).status == 200
    # An unauthenticated request is refused by authentication first and consumes nothing.
    assert (await call_tool(app, "echo", {"text": "x"})).status == 401
