"""A 2025-era session takes what it holds with it: an open GET stream ends within the sweep
interval after its session expires or is deleted (on any replica), for memory and Redis state."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import anyio
import pytest

from mcpserve import MCPServer
from mcpserve.config import load_settings
from mcpserve.runtime import build_http_app
from mcpserve.transports.http.app import HttpApp
from tests.support.asgi import Reply, open_request, request, rpc
from tests.support.polling import eventually

pytestmark = pytest.mark.anyio

KEY = "YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE"  # 32 bytes, base64url: a test key only
LEGACY = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
INIT = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
IDLE, SWEEP = 0.6, 0.3


@pytest.fixture(params=["memory", "redis"])
async def replicas(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """``replicas(n)``: n apps over one state (n > 1 needs shared state: Redis)."""
    async with AsyncExitStack() as stack:

        async def build(count: int = 1) -> list[HttpApp]:
            values: dict[str, Any] = {
                "auth": "none",
                "session_idle_timeout": IDLE,
                "session_sweep_interval": SWEEP,
            }
            if request.param == "redis":
                url = request.getfixturevalue("redis_url")
                prefix = f"t-{uuid.uuid4().hex}:"
                values |= {"redis_url": url, "request_state_keys": KEY, "state_prefix": prefix}
            apps = [build_http_app(MCPServer("release"), load_settings(values)) for _ in range(count)]
            for app in apps:
                await stack.enter_async_context(app.endpoint.dispatcher.server.lifespan())
            return apps

        yield build


async def new_session(app: HttpApp) -> str:
    reply = await request(app, "POST", headers=LEGACY, body=rpc("initialize", INIT))
    assert reply.status == 200
    return reply.headers["mcp-session-id"]


def stream_headers(session_id: str) -> dict[str, str]:
    return {**LEGACY, "accept": "text/event-stream", "mcp-session-id": session_id}


async def opened(stream: Reply) -> None:
    with anyio.fail_after(5):
        await stream.wait_for(b"retry:")


async def test_a_get_stream_ends_within_the_sweep_interval_after_its_session_expires(replicas: Any) -> None:
    (app,) = await replicas()
    session_id = await new_session(app)
    async with open_request(app, "GET", headers=stream_headers(session_id)) as stream:
        await opened(stream)
        opened_at = time.monotonic()
        with anyio.fail_after(IDLE + SWEEP + 5):
            await stream.done.wait()
        lasted = time.monotonic() - opened_at
    assert stream.status == 200
    # Not before the session expired (the stream does not slide its expiry), and not long after.
    assert lasted >= IDLE * 0.9
    assert lasted <= IDLE + SWEEP + 2  # the extra: a loaded machine's scheduling, never a sweep more
    assert app.endpoint.legacy.stream_watch.watched == 0

    async def gone() -> bool:  # at once with memory; within the read cache's freshness with Redis
        return (await request(app, "DELETE", headers={**LEGACY, "mcp-session-id": session_id})).status == 404

    await eventually(gone, within=5)


@pytest.mark.parametrize("replicas", ["redis"], indirect=True)
async def test_a_get_stream_ends_when_another_replica_deletes_its_session(replicas: Any) -> None:
    here, there = await replicas(2)
    session_id = await new_session(here)
    async with open_request(here, "GET", headers=stream_headers(session_id)) as stream:
        await opened(stream)
        deleted = await request(there, "DELETE", headers={**LEGACY, "mcp-session-id": session_id})
        assert deleted.status == 200
        with anyio.fail_after(SWEEP + 5):
            await stream.done.wait()
    assert stream.status == 200


@pytest.mark.parametrize("replicas", ["memory"], indirect=True)
async def test_an_open_get_stream_costs_two_tasks(replicas: Any) -> None:
    """Served by an ASGI server that cannot detach it: its request's own task (sending what the
    stream writes) and one hearing a disconnect. Notifications and keepalives come from one task
    per replica; expiry, deletion and shutdown end it through the replica's stream watch. Under
    mcpserve's own server a stream costs no task (test_detached_streams.py; bench.streams has
    the memory figure)."""
    (app,) = await replicas()
    sessions = [await new_session(app) for _ in range(20)]
    before = len(asyncio.all_tasks())
    async with AsyncExitStack() as streams:
        for session_id in sessions:
            stream = await streams.enter_async_context(
                open_request(app, "GET", headers=stream_headers(session_id))
            )
            await opened(stream)
        assert app.endpoint.legacy.stream_watch.watched == len(sessions)
        # Beside the replica's three (the watch's timer, the task that ends streams at shutdown,
        # and the one relaying notifications and keepalives to every stream):
        per_stream = (len(asyncio.all_tasks()) - before - 3) / len(sessions)
        assert per_stream <= 2, per_stream  # the ASGI server's task for the request, and one more
        app.begin_drain()
        for session_id in sessions:
            with anyio.fail_after(5):
                ended = await request(app, "GET", headers=stream_headers(session_id))
            assert ended.status == 503  # memory state: no new stream while draining
    assert app.endpoint.legacy.stream_watch.watched == 0
