"""Tools that raise, hang or return garbage: each yields its documented error, and serving goes on.

Driven through the real endpoint in-process, in both eras, with a good call after every bad one.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.to_thread
import pytest
from pydantic import BaseModel

from mcpserve import Context, MCPServer, ToolError
from mcpserve.config import load_settings
from mcpserve.runtime import build_http_app
from mcpserve.server.content import ToolResult
from mcpserve.transports.http.app import HttpApp
from tests.support.asgi import META, MODERN_HEADERS, request, rpc

pytestmark = pytest.mark.anyio

LEGACY = {"content-type": "application/json", "accept": "application/json, text/event-stream"}


class Weather(BaseModel):
    city: str
    celsius: float


@dataclass
class Observed:
    """What the hanging tools saw of their cancellation."""

    async_cancelled: anyio.Event = field(default_factory=anyio.Event)
    sync_stopped: threading.Event = field(default_factory=threading.Event)


def make_server(observed: Observed) -> MCPServer:
    server = MCPServer("failures-test")

    @server.tool()
    def good(text: str) -> str:
        return text

    @server.tool()
    def raises() -> str:
        raise RuntimeError("password=hunter2 at /srv/app/secret.py")

    @server.tool()
    def refuses() -> str:
        raise ToolError("Deployment 'web' is locked; try again after the freeze")

    @server.tool(timeout=0.2)
    async def hangs() -> str:
        try:
            await anyio.sleep_forever()
        finally:
            observed.async_cancelled.set()  # cancellation reached the tool's own code
        return "never"

    @server.tool(timeout=0.2)
    def hangs_in_thread(ctx: Context) -> str:
        while not ctx.cancelled:
            threading.Event().wait(0.01)  # a blocking upstream call, polled cooperatively
        observed.sync_stopped.set()
        return "abandoned"

    @server.tool()
    def unserializable() -> Any:
        return {"handle": threading.Lock()}

    @server.tool()
    def not_a_number() -> float:
        return float("nan")

    @server.tool()
    def bad_block() -> Any:
        return {"type": "text", "text": 42}

    @server.tool()
    def off_schema() -> Weather:
        return {"city": "Oslo", "celsius": "cold"}  # type: ignore[return-value]

    @server.tool()
    def off_schema_result() -> Weather:
        return ToolResult(content=["x"], structured_content={"city": 3})  # type: ignore[return-value]

    @server.tool()
    def lone_surrogate() -> str:
        return "\ud800"

    @server.tool()
    def too_deep() -> Any:
        value: Any = []
        for _ in range(300):
            value = [value]
        return ToolResult(content=["deep"], structured_content={"deep": value})

    return server


@pytest.fixture
def observed() -> Observed:
    return Observed()


@pytest.fixture
def app(observed: Observed) -> HttpApp:
    return build_http_app(make_server(observed), load_settings({"auth": "none"}))


async def modern_call(app: HttpApp, name: str, arguments: dict[str, Any] | None = None) -> tuple[int, Any]:
    headers = {**MODERN_HEADERS, "mcp-method": "tools/call", "mcp-name": name}
    body = rpc("tools/call", {"name": name, "arguments": arguments or {}, "_meta": META})
    reply = await request(app, "POST", headers=headers, body=body)
    return reply.status, reply.json()


async def legacy_session(app: HttpApp) -> dict[str, str]:
    params = {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    }
    reply = await request(app, "POST", headers=LEGACY, body=rpc("initialize", params))
    return {**LEGACY, "mcp-session-id": reply.headers["mcp-session-id"], "mcp-protocol-version": "2025-11-25"}


async def legacy_call(
    app: HttpApp, headers: dict[str, str], name: str, arguments: dict[str, Any] | None = None
) -> tuple[int, Any]:
    body = rpc("tools/call", {"name": name, "arguments": arguments or {}})
    reply = await request(app, "POST", headers=headers, body=body)
    return reply.status, reply.json()


async def assert_still_serving(app: HttpApp) -> None:
    status, body = await modern_call(app, "good", {"text": "still here"})
    assert status == 200
    assert body["result"]["content"] == [{"type": "text", "text": "still here"}]


def tool_error_text(status: int, body: Any) -> str:
    assert status == 200
    result = body["result"]
    assert result["isError"] is True
    [block] = result["content"]
    assert block["type"] == "text"
    text: str = block["text"]
    return text


async def test_a_tool_that_raises_yields_an_opaque_error_with_an_id_in_our_logs(
    app: HttpApp, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, "mcpserve")
    text = tool_error_text(*await modern_call(app, "raises"))
    assert text.startswith("Tool 'raises' failed: Internal error (error id ")
    error_id = text.rsplit("error id ", 1)[1].rstrip(")")
    assert "hunter2" not in text and "/srv" not in text and "RuntimeError" not in text
    [record] = [r for r in caplog.records if error_id in r.getMessage()]
    assert record.exc_info is not None  # the full traceback is in the log, under that id
    await assert_still_serving(app)


async def test_a_tool_error_shows_its_own_message(app: HttpApp) -> None:
    text = tool_error_text(*await modern_call(app, "refuses"))
    assert text == "Deployment 'web' is locked; try again after the freeze"
    await assert_still_serving(app)


async def test_a_hanging_async_tool_times_out_and_sees_the_cancellation(
    app: HttpApp, observed: Observed
) -> None:
    text = tool_error_text(*await modern_call(app, "hangs"))
    assert text == "Tool 'hangs' timed out after 0.2 s; the upstream did not answer in time"
    assert observed.async_cancelled.is_set()
    await assert_still_serving(app)


async def test_a_hanging_sync_tool_times_out_and_can_stop_cooperatively(
    app: HttpApp, observed: Observed
) -> None:
    text = tool_error_text(*await modern_call(app, "hangs_in_thread"))
    assert text == "Tool 'hangs_in_thread' timed out after 0.2 s; the upstream did not answer in time"
    assert await anyio.to_thread.run_sync(observed.sync_stopped.wait, 5)
    await assert_still_serving(app)


@pytest.mark.parametrize(
    ("tool", "message"),
    [
        ("unserializable", "Tool 'unserializable' returned a value that cannot be sent as JSON"),
        (
            "not_a_number",
            "Tool 'not_a_number' returned a non-finite number (NaN or infinity), which JSON cannot carry",
        ),
        ("bad_block", "Tool 'bad_block' returned a value that cannot be sent as JSON"),
        ("too_deep", "Tool 'too_deep' returned a value that cannot be sent as JSON"),
        ("off_schema", "Tool 'off_schema' produced a result that does not match its declared output type"),
        (
            "off_schema_result",
            "Tool 'off_schema_result' produced a result that does not match its declared output type",
        ),
    ],
)
async def test_garbage_results_become_is_error_results_in_both_eras(
    app: HttpApp, tool: str, message: str
) -> None:
    assert tool_error_text(*await modern_call(app, tool)) == message
    await assert_still_serving(app)
    session = await legacy_session(app)
    assert tool_error_text(*await legacy_call(app, session, tool)) == message
    status, body = await legacy_call(app, session, "good", {"text": "on"})
    assert (status, body["result"]["content"]) == (200, [{"type": "text", "text": "on"}])


async def test_a_result_json_cannot_carry_becomes_an_internal_error_for_its_id(app: HttpApp) -> None:
    status, body = await modern_call(app, "lone_surrogate")
    assert body["id"] == 1
    assert body["error"]["code"] == -32603
    assert set(body["error"]["data"]) == {"errorId"}
    assert status == 200  # the status was chosen before encoding failed; the body still says why
    await assert_still_serving(app)


async def test_timeouts_from_settings_override_the_decorator(observed: Observed) -> None:
    settings = load_settings({"auth": "none", "tool_timeouts": {"good": 5, "hangs": 0.1}})
    app = build_http_app(make_server(observed), settings)
    assert app.endpoint.dispatcher.timeout_for(app.endpoint.dispatcher.server.find_tool("hangs", None)) == 0.1  # type: ignore[arg-type]
    text = tool_error_text(*await modern_call(app, "hangs"))
    assert text == "Tool 'hangs' timed out after 0.1 s; the upstream did not answer in time"
