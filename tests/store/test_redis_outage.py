"""Redis stops and comes back: state operations answer StoreUnavailable meanwhile (never anything
else), readiness fails, and everything works again by itself once Redis is back."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable

import anyio
import pytest

from mcpserve.errors import StoreUnavailable
from mcpserve.store.redis_bus import RedisMessageBus
from mcpserve.store.redis_connection import STATE_RETRY, connect
from mcpserve.store.redis_store import RedisEventStore, RedisSessionStore
from mcpserve.types import JSONObject
from tests.support.polling import eventually
from tests.support.redis_server import PrivateRedis, private_redis

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


@pytest.fixture
async def server() -> AsyncIterator[PrivateRedis]:
    with private_redis() as redis_server:
        yield redis_server


async def _works(sessions: RedisSessionStore) -> bool:
    try:
        return bool(await sessions.create(f"probe-{time.monotonic_ns()}", {}))
    except StoreUnavailable:
        return False


async def test_an_outage_is_store_unavailable_and_recovery_needs_no_restart(server: PrivateRedis) -> None:
    client = connect(server.url, max_connections=8, timeout=1.0, retry=STATE_RETRY)
    sessions = RedisSessionStore(client, prefix="outage:", idle_timeout=60, max_sessions=100)
    events = RedisEventStore(sessions)
    bus, other = (
        RedisMessageBus(connect(server.url, retry=STATE_RETRY), prefix="outage:", presence_ttl=1.0)
        for _ in range(2)
    )
    failures: list[BaseException] = []
    served = 0
    stop = anyio.Event()

    async def load() -> None:
        # Session traffic the whole time: each failure must be StoreUnavailable, nothing else.
        nonlocal served
        while not stop.is_set():
            try:
                await sessions.load("s")
                served += 1
            except Exception as exc:
                failures.append(exc)
            await anyio.sleep(0.005)

    try:
        assert await sessions.create("s", {"n": 1})
        await sessions.ping()
        async with bus.listen("session/s") as inbox, bus.subscribe() as broadcast:
            async with anyio.create_task_group() as group:
                group.start_soon(load)
                server.stop()
                await eventually(lambda: len(failures) >= 5)
                for operation in (
                    sessions.ping(),
                    sessions.count(),
                    sessions.load("s"),
                    sessions.update("s", {}, expected_version=1),
                    events.append("s", "stream", {}),
                    events.replay("s", "stream/1"),
                    other.deliver("session/s", {}),
                    other.publish({"method": "m", "params": {}}),
                ):
                    with pytest.raises(StoreUnavailable) as caught:
                        await operation
                    assert caught.value.http_status == 503 and caught.value.retry_after
                server.start()
                returned = time.monotonic()
                await eventually(lambda: _works(sessions), within=5)
                # The listener that was open across the outage is found and reached again.
                await eventually(lambda: other.deliver("session/s", {"after": True}), within=5)
                stop.set()
            assert time.monotonic() - returned < 5
            with anyio.fail_after(5):
                assert await inbox.__anext__() == {"after": True}
            await eventually(_published_and_received(other, broadcast), within=5)
        assert served > 0 and failures
        assert all(isinstance(exc, StoreUnavailable) for exc in failures), {type(e) for e in failures}
    finally:
        for each in (bus, other):
            await each.aclose()
            await each.client.aclose()
        await client.aclose()


def _published_and_received(
    bus: RedisMessageBus, broadcast: AsyncIterator[JSONObject]
) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        await bus.publish({"method": "notifications/tools/list_changed", "params": {}})
        with anyio.move_on_after(0.2):
            event = await broadcast.__anext__()
            return bool(event["method"] == "notifications/tools/list_changed")
        return False

    return check


async def test_a_hung_redis_is_store_unavailable_within_the_timeout_and_keeps_its_sessions(
    server: PrivateRedis,
) -> None:
    client = connect(server.url, max_connections=8, timeout=1.0, retry=STATE_RETRY)
    sessions = RedisSessionStore(client, prefix="hung:", idle_timeout=60, max_sessions=100)
    try:
        assert await sessions.create("s", {"n": 1})
        server.pause()
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            await sessions.load("s")
        assert time.monotonic() - started < 1.9  # one socket timeout (1 s): a timeout is not retried
        server.resume()
        await eventually(lambda: _loads(sessions), within=5)  # the same session, kept by Redis
    finally:
        await client.aclose()


async def _loads(sessions: RedisSessionStore) -> bool:
    try:
        return await sessions.load("s") == ({"n": 1}, 1)
    except StoreUnavailable:
        return False
