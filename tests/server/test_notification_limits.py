"""A tool reporting progress or logging in a loop cannot flood its client (or the server's log).

Both eras over HTTP and stdio, composed from settings as ``mcpserve serve`` composes them.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import orjson
import pytest

from mcpserve import MCPServer
from mcpserve.config import load_settings
from mcpserve.protocol import jsonrpc
from mcpserve.protocol.envelope import read_request_meta
from mcpserve.runtime import build_dispatcher, build_http_app
from mcpserve.server.call import Call
from mcpserve.server.context import Context
from mcpserve.server.notify_limits import NotificationBudget, NotificationLimits
from mcpserve.transports.stdio import StdioConnection
from mcpserve.types import JSONObject
from tests.support.asgi import MODERN_HEADERS, request, rpc
from tests.support.clock import FakeClock
from tests.support.logcheck import check_log_lines
from tests.support.wire import initialize_request, modern_request

pytestmark = pytest.mark.anyio

LOOPS = 1000
# Five notifications of each kind a request, no refill (so progress: five, then the final one).
LIMITED = {
    "auth": "none",
    "notification_burst": 5,
    "progress_notifications_per_second": 0,
    "log_notifications_per_second": 0,
    "rate_limit_per_minute": 0,
    "rate_limit_per_hour": 0,
}


def _app() -> MCPServer:
    app = MCPServer("chatty")

    @app.tool()
    async def busy(ctx: Context) -> str:
        """Reports progress and logs on every step of a long loop."""
        for step in range(1, LOOPS + 1):
            await ctx.report_progress(step, LOOPS)
            await ctx.info(f"step {step}")
        return "done"

    return app


def _notifications(messages: list[JSONObject], method: str) -> list[JSONObject]:
    return [message["params"] for message in messages if message.get("method") == method]


def _check_thinned(messages: list[JSONObject]) -> None:
    progress = _notifications(messages, "notifications/progress")
    assert [p["progress"] for p in progress] == [1, 2, 3, 4, 5, LOOPS]  # the burst, then the one completing
    logged = _notifications(messages, "notifications/message")
    assert [m["data"] for m in logged] == [f"step {n}" for n in range(1, 6)]
    assert messages[-1]["result"]["content"][0]["text"] == "done"


def _check_logged_once(stream: io.BytesIO) -> None:
    warnings = [
        line for line in check_log_lines(stream.getvalue()) if line.get("logger") == "mcpserve.notifications"
    ]
    assert sorted(line["event"].split()[0] for line in warnings) == ["log", "progress"]
    assert all("(tools/call busy)" in line["event"] for line in warnings)


@pytest.fixture
def log_stream(checked_logs: io.BytesIO) -> io.BytesIO:
    return checked_logs


async def test_2026_07_28_over_http(log_stream: io.BytesIO) -> None:
    http = build_http_app(_app(), load_settings(LIMITED))
    body = modern_request(1, "tools/call", {"name": "busy"}, progress_token="p", log_level="debug")
    headers = {**MODERN_HEADERS, "mcp-method": "tools/call", "mcp-name": "busy"}
    reply = await request(http, "POST", headers=headers, body=orjson.dumps(body))
    assert reply.status == 200
    _check_thinned(reply.events())
    _check_logged_once(log_stream)


async def test_a_2025_session_over_http(log_stream: io.BytesIO) -> None:
    http = build_http_app(_app(), load_settings(LIMITED))
    legacy = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
    opened = await request(http, "POST", headers=legacy, body=orjson.dumps(initialize_request()))
    session = {
        **legacy,
        "mcp-session-id": opened.headers["mcp-session-id"],
        "mcp-protocol-version": "2025-11-25",
    }
    params = {"name": "busy", "_meta": {"progressToken": "p"}}
    reply = await request(http, "POST", headers=session, body=rpc("tools/call", params))
    assert reply.status == 200
    _check_thinned(reply.events())
    _check_logged_once(log_stream)


@pytest.mark.parametrize("era", ["modern", "legacy"])
async def test_stdio(era: str, log_stream: io.BytesIO) -> None:
    settings = load_settings({**LIMITED, "transport": "stdio"})
    written: list[bytes] = []
    connection = StdioConnection(build_dispatcher(_app(), settings), written.append, max_line_bytes=1 << 20)
    if era == "modern":
        lines = [modern_request(1, "tools/call", {"name": "busy"}, progress_token="p", log_level="info")]
    else:
        call = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "busy", "_meta": {"progressToken": "p"}},
        }
        lines = [initialize_request(0), {"jsonrpc": "2.0", "method": "notifications/initialized"}, call]

    async def feed() -> AsyncIterator[bytes | None]:
        for line in lines:
            yield orjson.dumps(line)

    await connection.run(feed())  # at EOF every request read is answered before run returns
    messages = [orjson.loads(line) for line in b"".join(written).splitlines()]
    _check_thinned([m for m in messages if m.get("id") != 0])
    _check_logged_once(log_stream)


async def test_after_drops_the_client_is_told_how_many_it_missed() -> None:
    clock = FakeClock()
    limits = NotificationLimits(progress_per_second=2, log_per_second=2, burst=2, clock=clock)
    sent: list[tuple[str, JSONObject]] = []

    class Outbound:
        async def notify(self, method: str, params: JSONObject) -> None:
            sent.append((method, params))

        async def request(self, method: str, params: JSONObject) -> JSONObject:
            raise AssertionError("not used")

    raw = modern_request(1, "tools/call", {"name": "busy"}, log_level="debug", progress_token=9)
    message = jsonrpc.parse_message(raw)
    assert isinstance(message, jsonrpc.Request)
    ctx = Context(
        Call.modern(message, read_request_meta(message.params), outbound=Outbound()), _app(), limits
    )
    for n in range(5):
        await ctx.debug(n)  # two go out, three are dropped
    for n in range(1, 5):
        await ctx.report_progress(n)  # two go out
    clock.advance(0.5)  # one token of each kind comes back
    await ctx.debug("after")
    await ctx.report_progress(5)
    await ctx.report_progress(6)  # no token: dropped
    await ctx.report_progress(7, total=7)  # completes the total: goes out anyway
    assert sent == [
        ("notifications/message", {"level": "debug", "data": 0}),
        ("notifications/message", {"level": "debug", "data": 1}),
        ("notifications/progress", {"progressToken": 9, "progress": 1}),
        ("notifications/progress", {"progressToken": 9, "progress": 2}),
        (
            "notifications/message",
            {
                "level": "warning",
                "logger": "mcpserve",
                "data": {
                    "message": "3 log messages dropped: this request exceeded its notification rate limit",
                    "dropped": 3,
                },
            },
        ),
        ("notifications/message", {"level": "debug", "data": "after"}),
        ("notifications/progress", {"progressToken": 9, "progress": 5}),
        ("notifications/progress", {"progressToken": 9, "progress": 7, "total": 7}),
    ]


def test_the_budget_refills_up_to_its_burst_only() -> None:
    clock = FakeClock()
    budget = NotificationBudget(NotificationLimits(log_per_second=10, burst=3, clock=clock))
    assert [budget.allow_log() for _ in range(4)] == [True, True, True, False]
    clock.advance(60)  # a long pause earns the burst back, not 600 messages
    assert [budget.allow_log() for _ in range(4)] == [True, True, True, False]
    assert budget.logs.dropped == 2
    assert [budget.allow_progress(final=False) for _ in range(4)] == [True, True, True, False]
    assert budget.allow_progress(final=True)
    assert budget.progress.dropped == 1


def test_the_settings_reach_the_dispatcher() -> None:
    limits = build_dispatcher(_app(), load_settings(LIMITED)).notification_limits
    assert (limits.progress_per_second, limits.log_per_second, limits.burst) == (0, 0, 5)
    defaults = build_dispatcher(_app(), load_settings({"auth": "none"})).notification_limits
    assert (defaults.progress_per_second, defaults.log_per_second, defaults.burst) == (10, 10, 20)
