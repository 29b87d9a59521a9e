"""Draining in-process: what is refused, what still runs, and how streams end."""

from __future__ import annotations

import asyncio
import io
import uuid
from contextlib import AsyncExitStack
from typing import Any

import anyio
import orjson
import pytest

from mcpserve.transports.http.app import HttpApp
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
from tests.support.logcheck import check_log_lines
from tests.support.redis_server import private_redis

pytestmark = pytest.mark.anyio

STATE_KEY = "YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE"  # 32 bytes, base64url: a test key only


def assert_refused(reply: Reply) -> None:
    assert reply.status == 503
    assert reply.headers["retry-after"] == "2"
    error = body_of(reply)["error"]
    assert error["code"] == -31000
    assert "shutting down" in error["message"]


async def test_only_what_cannot_be_handed_over_is_refused_while_draining() -> None:
    app = make_app()
    session = (await initialize(app)).headers["mcp-session-id"]
    app.begin_drain()
    assert_refused(await initialize(app))
    # Stateless, so served: the closed listener and Connection: close send the next one elsewhere.
    modern = await call_tool(app, "echo", {"text": "x"})
    assert modern.status == 200
    assert modern.json()["result"]["structuredContent"] == {"result": "x"}
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


async def test_with_shared_state_new_sessions_and_streams_are_handed_over_while_draining() -> None:
    """Redis state: a session made on a draining replica lives on for the others, so it is made
    there; a new GET stream is answered with a reconnection hint instead of a 503."""
    with private_redis() as redis_server:
        shared: dict[str, Any] = {
            "redis_url": redis_server.url,
            "request_state_keys": STATE_KEY,
            "state_prefix": f"drain-{uuid.uuid4().hex}:",
        }
        draining, other = make_app(**shared), make_app(**shared)
        async with AsyncExitStack() as stack:
            for app in (draining, other):
                await stack.enter_async_context(app.endpoint.dispatcher.server.lifespan())
            draining.begin_drain()
            created = await initialize(draining)
            assert created.status == 200
            session = created.headers["mcp-session-id"]
            call = rpc("tools/call", {"name": "echo", "arguments": {"text": "elsewhere"}})
            follow_up = await request(other, "POST", headers=session_headers(session), body=call)
            assert follow_up.status == 200
            assert follow_up.json()["result"]["structuredContent"] == {"result": "elsewhere"}
            stream_headers = {**session_headers(session), "accept": "text/event-stream"}
            handed_over = await request(draining, "GET", headers=stream_headers)
            assert handed_over.status == 200
            assert handed_over.body.endswith(b"retry: 1000\n\n")  # reconnect, to another replica
            async with open_request(other, "GET", headers=stream_headers) as resumed:
                with anyio.fail_after(5):
                    await resumed.wait_for(b"retry:")
                assert resumed.status == 200


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
        # The GET stream's last words are a reconnection hint: resume (elsewhere) promptly.
        assert standalone.body.endswith(b"retry: 1000\n\n")
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


async def test_wait_idle_waits_for_a_request_that_started_as_the_last_one_ended() -> None:
    # While draining, a keep-alive connection's next request is still served: it can start after
    # the count reached zero and before the waiter wakes. It is waited for, not cut off.
    drain = make_app(make_server(Gate())).drain
    drain.enter()
    waiting = asyncio.get_running_loop().create_task(drain.wait_idle(5))
    await asyncio.sleep(0)  # the waiter is waiting
    drain.leave()
    drain.enter()  # in the same loop iteration: the waiter has not run yet
    for _ in range(5):
        await asyncio.sleep(0)  # let the woken waiter run
    assert not waiting.done()
    drain.leave()
    with anyio.fail_after(5):
        assert await waiting is True


class _Exchange:
    """One request driven by hand, so the test can cancel its task like an ASGI server does."""

    def __init__(self, app: HttpApp, headers: dict[str, str], body: bytes | None) -> None:
        self.messages: list[dict[str, Any]] = []
        self.sent = anyio.Event()
        self._body = body
        scope = {
            "type": "http",
            "method": "POST",
            "path": "/mcp",
            "query_string": b"",
            "headers": [(k.encode(), v.encode()) for k, v in {"host": "127.0.0.1", **headers}.items()],
            "client": ("127.0.0.1", 50000),
        }
        self.task = asyncio.get_running_loop().create_task(app(scope, self._receive, self._send))

    async def _receive(self) -> dict[str, Any]:
        body, self._body = self._body, None
        if body is None:  # no body (a client that never finishes sending it), or already read
            await anyio.sleep_forever()
        return {"type": "http.request", "body": body, "more_body": False}

    async def _send(self, message: dict[str, Any]) -> None:
        self.messages.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            self.sent.set()

    def reply(self) -> tuple[int, dict[bytes, bytes], Any]:
        start, *bodies = self.messages
        return start["status"], dict(start["headers"]), orjson.loads(b"".join(b["body"] for b in bodies))


async def test_deadline_cut_off_answers_503_with_the_tool_in_the_request_line(
    checked_logs: io.BytesIO,
) -> None:
    gate = Gate()
    app = make_app(make_server(gate))
    body = rpc("tools/call", {"name": "hold", "arguments": {}, "_meta": META}, request_id=4)
    exchange = _Exchange(app, modern_headers("tools/call", "hold"), body)
    with anyio.fail_after(5):
        await gate.entered.wait()
    app.begin_drain()
    assert app.endpoint.cut_off() == 1
    assert app.endpoint.cut_off() == 0  # each call is cut off once
    with anyio.fail_after(5):
        await exchange.task
    status, headers, answer = exchange.reply()
    assert (status, headers[b"retry-after"], answer["id"], answer["error"]["code"]) == (503, b"2", 4, -31000)
    [line] = [line for line in check_log_lines(checked_logs.getvalue()) if line["event"] == "request"]
    assert (line["tool"], line["status"], line["era"], line["outcome"]) == ("hold", 503, "modern", "error")


async def test_server_cancellation_while_draining_is_answered_not_raised() -> None:
    gate = Gate()
    app = make_app(make_server(gate))
    body = rpc("tools/call", {"name": "hold", "arguments": {}, "_meta": META}, request_id=5)
    in_tool = _Exchange(app, modern_headers("tools/call", "hold"), body)
    before_body = _Exchange(app, modern_headers("tools/call", "echo"), None)
    with anyio.fail_after(5):
        await gate.entered.wait()
    app.begin_drain()
    in_tool.task.cancel()  # what uvicorn does to tasks still running after its shutdown grace
    before_body.task.cancel()
    with anyio.fail_after(5):
        await in_tool.task
        await before_body.task
    assert in_tool.reply()[0] == 503 and in_tool.reply()[2]["id"] == 5
    status, headers, answer = before_body.reply()
    assert (status, headers[b"retry-after"], answer["error"]["code"]) == (503, b"2", -31000)
    assert app.drain.in_flight == 0


async def test_cancellation_outside_a_drain_still_propagates() -> None:
    app = make_app()
    waiting = _Exchange(app, modern_headers("tools/call", "echo"), None)
    await anyio.wait_all_tasks_blocked()  # inside the endpoint, waiting for the body
    waiting.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting.task
    assert waiting.messages == []
