"""Three in-process replicas on one private Redis act as one server for what cannot be data:
answers to server→client requests, cancellations, the one GET stream per session, list changes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import anyio
import orjson
import pytest

from mcpserve import Context, MCPServer
from mcpserve.transports.http.app import HttpApp
from tests.ops.support import LEGACY_HEADERS, make_app, session_headers
from tests.store.test_runtime_state import KEY
from tests.support.asgi import Reply, open_request, request, rpc
from tests.support.polling import eventually
from tests.support.redis_server import private_redis

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


released = anyio.Event()  # one process holds every replica: one event releases poll_me anywhere


def _server(cancelled: list[str]) -> MCPServer:
    server = MCPServer("replicas")

    @server.tool()
    async def confirm(ctx: Context, action: str) -> str:
        """Ask before acting."""
        answer = await ctx.elicit("Really?", {"type": "object", "properties": {"ok": {"type": "boolean"}}})
        return f"{action}: {answer.action}"

    @server.tool()
    async def poll_me(ctx: Context) -> str:
        """Closes its stream, reports progress, waits for the test, then answers."""
        await ctx.close_sse_stream()
        await ctx.report_progress(1, 2)
        await released.wait()
        return "finished"

    @server.tool()
    async def hold() -> str:
        """Runs until cancelled."""
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.append("hold")
        return "never"  # pragma: no cover - cancelled first

    return server


@asynccontextmanager
async def _replicas(cancelled: list[str]) -> AsyncIterator[list[HttpApp]]:
    with private_redis() as redis_server:
        prefix = f"test-{uuid.uuid4().hex}:"
        apps = [
            make_app(
                _server(cancelled),
                redis_url=redis_server.url,
                request_state_keys=KEY,
                state_prefix=prefix,
                rate_limit_per_minute=0,
                rate_limit_per_hour=0,
            )
            for _ in range(3)
        ]
        async with AsyncExitStack() as stack:
            for app in apps:
                await stack.enter_async_context(app.endpoint.dispatcher.server.lifespan())
            yield apps


def _sse(reply: Reply) -> list[Any]:
    return reply.events()


async def _session(app: HttpApp) -> str:
    params = {
        "protocolVersion": "2025-06-18",
        "capabilities": {"elicitation": {}},
        "clientInfo": {"name": "t", "version": "1"},
    }
    created = await request(app, "POST", headers=LEGACY_HEADERS, body=rpc("initialize", params))
    assert created.status == 200
    return created.headers["mcp-session-id"]


def _answer(request_id: str, result: dict[str, Any]) -> bytes:
    return orjson.dumps({"jsonrpc": "2.0", "id": request_id, "result": result})


async def test_an_elicitation_asked_on_one_replica_is_answered_through_another() -> None:
    async with _replicas([]) as (first, second, _):
        session_id = await _session(first)
        headers = session_headers(session_id)
        body = rpc("tools/call", {"name": "confirm", "arguments": {"action": "rollback"}}, request_id=9)
        async with open_request(first, "POST", headers=headers, body=body) as call:
            with anyio.fail_after(5):
                await call.wait_for(b"elicitation/create")
            asked = next(e for e in _sse(call) if e.get("method") == "elicitation/create")
            answered = await request(
                second, "POST", headers=headers, body=_answer(asked["id"], {"action": "accept"})
            )
            assert answered.status == 202
            with anyio.fail_after(5):
                await call.done.wait()
        final = _sse(call)[-1]
        assert final["id"] == 9
        assert final["result"]["content"][0]["text"] == "rollback: accept"
        # The same answer again: nobody waits for it any more, so it is refused, not dropped.
        again = await request(
            second, "POST", headers=headers, body=_answer(asked["id"], {"action": "accept"})
        )
        assert again.status == 404
        assert "No request is waiting" in again.json()["error"]["message"]


async def test_a_cancellation_sent_to_another_replica_stops_the_call() -> None:
    cancelled: list[str] = []
    async with _replicas(cancelled) as (first, second, third):
        session_id = await _session(first)
        headers = session_headers(session_id)
        body = rpc("tools/call", {"name": "hold", "arguments": {}}, request_id=5)
        async with open_request(first, "POST", headers=headers, body=body) as call:
            cancel = rpc("notifications/cancelled", {"requestId": 5}, request_id=None)

            async def cancelled_elsewhere() -> bool:
                # A call listens for remote cancellations once it has run a moment: resend until then.
                reply = await request(third, "POST", headers=headers, body=cancel)
                assert reply.status == 202
                return bool(cancelled)

            await eventually(cancelled_elsewhere)
            with anyio.fail_after(5):
                await call.done.wait()
        assert call.status == 202  # a cancelled call answers nothing
        # The session is still served everywhere.
        listed = await request(second, "POST", headers=headers, body=rpc("tools/list"))
        assert listed.status == 200


async def test_one_get_stream_per_session_across_replicas_and_it_hears_every_replica() -> None:
    async with _replicas([]) as (first, second, third):
        session_id = await _session(second)
        headers = {**session_headers(session_id), "accept": "text/event-stream"}
        async with open_request(first, "GET", headers=headers) as stream:
            await eventually(lambda: stream.status == 200)
            refused = await request(second, "GET", headers=headers)
            assert refused.status == 409
            await third.endpoint.dispatcher.server.notify_tools_changed()
            with anyio.fail_after(5):
                await stream.wait_for(b"notifications/tools/list_changed")
        # Closed on the first replica: another may open it now.
        async with open_request(third, "GET", headers=headers) as reopened:
            await eventually(lambda: reopened.status == 200)


def _event_ids(reply: Reply) -> list[str]:
    return [line[4:] for line in reply.body.decode().split("\n") if line.startswith("id: ")]


async def test_a_stream_resumes_from_stored_events_on_another_replica() -> None:
    global released  # noqa: PLW0603 - a fresh event for this test's loop
    released = anyio.Event()
    async with _replicas([]) as (first, second, third):
        session_id = await _session(first)
        headers = session_headers(session_id)
        body = rpc("tools/call", {"name": "poll_me", "arguments": {}, "_meta": {"progressToken": "p"}}, 4)
        async with open_request(first, "POST", headers=headers, body=body) as post:
            with anyio.fail_after(5):
                await post.done.wait()  # the tool closed the response; it still runs on the first
            [priming] = _event_ids(post)
            resume = {**headers, "accept": "text/event-stream", "last-event-id": priming}

            async def progress_stored() -> bool:
                replay = await third.endpoint.events.replay(session_id, priming)
                return replay is not None and len(replay[1]) >= 1

            await eventually(progress_stored)
            # Another replica replays what is stored, then ends the response (its priming event
            # carries retry:), and the client polls again from the last id it saw.
            early = await request(second, "GET", headers=resume)
            assert early.status == 200
            assert [e["params"]["progress"] for e in early.events()] == [1]
            released.set()

            async def answered() -> bool:
                later = await request(
                    third, "GET", headers={**resume, "last-event-id": _event_ids(early)[-1]}
                )
                return any(e.get("id") == 4 for e in later.events())

            await eventually(answered)
