"""Two HTTP apps on one Redis act as one server for 2025-era sessions: a session created on one
replica is served by the other, and a Redis outage is a 503 with Retry-After, never a 500."""

from __future__ import annotations

import uuid
from contextlib import AsyncExitStack
from typing import Any

import anyio
import pytest

from mcpserve.transports.http.app import HttpApp
from tests.ops.support import (
    body_of,
    initialize,
    make_app,
    make_server,
    modern_headers,
    session_headers,
)
from tests.store.test_runtime_state import KEY
from tests.support.asgi import META, open_request, request, rpc
from tests.support.redis_server import private_redis

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


def _replica(url: str, prefix: str) -> HttpApp:
    return make_app(
        make_server(),
        redis_url=url,
        request_state_keys=KEY,
        state_prefix=prefix,
        rate_limit_per_minute=0,
        rate_limit_per_hour=0,
        # Every request reads Redis: with the read cache, a session read in the last second would
        # still be served from memory when Redis stops (tests/store/test_cached.py covers that).
        session_cache_ttl=0,
    )


async def _call(app: HttpApp, session_id: str, text: str) -> tuple[int, dict[str, str], Any]:
    body = rpc("tools/call", {"name": "echo", "arguments": {"text": text}})
    reply = await request(app, "POST", headers=session_headers(session_id), body=body)
    return reply.status, reply.headers, body_of(reply)


async def test_a_session_made_on_one_replica_is_served_by_another_and_outages_are_503() -> None:
    with private_redis() as redis_server:
        prefix = f"test-{uuid.uuid4().hex}:"
        first, second = _replica(redis_server.url, prefix), _replica(redis_server.url, prefix)
        async with AsyncExitStack() as stack:
            for app in (first, second):
                await stack.enter_async_context(app.endpoint.dispatcher.server.lifespan())
            created = await initialize(first)
            assert created.status == 200
            session_id = created.headers["mcp-session-id"]
            status, _, body = await _call(second, session_id, "on the other replica")
            assert status == 200
            assert body["result"]["content"][0]["text"] == "on the other replica"
            redis_server.stop()
            status, headers, body = await _call(first, session_id, "while Redis is down")
            assert (status, headers["retry-after"], body["error"]["code"]) == (503, "2", -31000)
            redis_server.start()  # an empty Redis: the session is gone, the service is back
            again = await initialize(second)
            assert again.status == 200
            status, _, body = await _call(first, again.headers["mcp-session-id"], "back")
            assert (status, body["result"]["content"][0]["text"]) == (200, "back")


async def test_a_listen_stream_and_a_get_stream_on_one_replica_hear_a_change_made_on_another() -> None:
    """With Redis state the server's bus is the Redis one: list changes reach every replica."""
    with private_redis() as redis_server:
        prefix = f"test-{uuid.uuid4().hex}:"
        first, second = _replica(redis_server.url, prefix), _replica(redis_server.url, prefix)
        listen = rpc(
            "subscriptions/listen", {"notifications": {"toolsListChanged": True}, "_meta": META}, request_id=7
        )
        async with AsyncExitStack() as stack:
            for app in (first, second):
                await stack.enter_async_context(app.endpoint.dispatcher.server.lifespan())
            session = (await initialize(first)).headers["mcp-session-id"]
            stream_headers = {**session_headers(session), "accept": "text/event-stream"}
            listening = await stack.enter_async_context(
                open_request(first, "POST", headers=modern_headers("subscriptions/listen"), body=listen)
            )
            standalone = await stack.enter_async_context(open_request(first, "GET", headers=stream_headers))
            with anyio.fail_after(5):
                await listening.wait_for(b"acknowledged")
                await standalone.wait_for(b"retry:")
            await second.endpoint.dispatcher.server.notify_tools_changed()
            with anyio.fail_after(5):
                await listening.wait_for(b"notifications/tools/list_changed")
                await standalone.wait_for(b"notifications/tools/list_changed")
