"""Draining in-process: what is refused, what still runs, and how streams end."""

from __future__ import annotations

import anyio
import pytest

from tests.ops.support import (
    Gate,
    body_of,
    call_tool,
    initialize,
    make_app,
    make_server,
    modern_headers,
    session_headers,
)
from tests.support.asgi import META, Reply, open_request, request, rpc

pytestmark = pytest.mark.anyio


def assert_refused(reply: Reply) -> None:
    assert reply.status == 503
    assert reply.headers["retry-after"] == "2"
    error = body_of(reply)["error"]
    assert error["code"] == -31000
    assert "shutting down" in error["message"]


async def test_new_work_is_refused_and_established_sessions_still_run() -> None:
    app = make_app()
    session = (await initialize(app)).headers["mcp-session-id"]
    app.begin_drain()
    assert_refused(await initialize(app))
    assert_refused(await call_tool(app, "echo", {"text": "x"}))
    stream_headers = {**session_headers(session), "accept": "text/event-stream"}
    assert_refused(await request(app, "GET", headers=stream_headers))
    in_session = await request(
        app,
        "POST",
        headers=session_headers(session),
        body=rpc("tools/call", {"name": "echo", "arguments": {"text": "y"}}),
    )
    assert in_session.status == 200
    assert in_session.json()["result"]["structuredContent"] == {"result": "y"}


async def test_listen_stream_ends_with_its_final_result_and_get_stream_closes() -> None:
    app = make_app()
    session = (await initialize(app)).headers["mcp-session-id"]
    listen = rpc(
        "subscriptions/listen", {"notifications": {"toolsListChanged": True}, "_meta": META}, request_id=7
    )
    stream_headers = {**session_headers(session), "accept": "text/event-stream"}
    async with (
        open_request(app, "POST", headers=modern_headers("subscriptions/listen"), body=listen) as listening,
        open_request(app, "GET", headers=stream_headers) as standalone,
    ):
        with anyio.fail_after(5):
            await listening.wait_for(b"acknowledged")
            await standalone.wait_for(b"retry:")  # the GET stream's priming event
        assert standalone.status == 200
        assert app.drain.in_flight == 2
        app.begin_drain()
        with anyio.fail_after(5):
            await listening.done.wait()
            await standalone.done.wait()
        final = listening.events()[-1]
        assert final["id"] == 7
        assert final["result"]["resultType"] == "complete"
        assert await app.drain.wait_idle(5)


async def test_wait_idle_reports_requests_still_running_at_the_deadline() -> None:
    gate = Gate()
    app = make_app(make_server(gate))
    body = rpc("tools/call", {"name": "hold", "arguments": {}, "_meta": META})
    async with open_request(app, "POST", headers=modern_headers("tools/call", "hold"), body=body) as held:
        with anyio.fail_after(5):
            await gate.entered.wait()
        assert app.drain.in_flight == 1
        app.begin_drain()
        assert await app.drain.wait_idle(0.05) is False
        gate.release.set()
        assert await app.drain.wait_idle(5) is True
        with anyio.fail_after(5):
            await held.done.wait()
        assert held.json()["result"]["structuredContent"] == {"result": "released"}
