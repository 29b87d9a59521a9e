"""Redis specifics: keys of one session share a hash slot (Redis Cluster), nothing outlives its
session, and a listener whose replica dies is known dead at once."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import anyio
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream
from redis.crc import key_slot

from mcpserve.store.redis_bus import RedisMessageBus
from mcpserve.store.redis_store import check_prefix
from tests.store.harness import REDIS_URL, RedisHarness
from tests.support.polling import eventually
from tests.support.processes import child_env

pytestmark = pytest.mark.anyio


@pytest.fixture
async def harness() -> AsyncIterator[RedisHarness]:
    redis = RedisHarness()
    try:
        yield redis
    finally:
        await redis.aclose()


async def _keys(harness: RedisHarness) -> list[bytes]:
    client = harness.client()
    return sorted([key async for key in client.scan_iter(match=harness.prefix + "*")])


async def test_one_session_lives_in_one_hash_slot_and_its_keys_expire(harness: RedisHarness) -> None:
    sessions = await harness.sessions(max_per_owner=5)
    events = harness.events(sessions)
    assert await sessions.create("abc", {"n": 1}, owner="key-a")
    await events.append("abc", "stream", {"m": 1})
    keys = await _keys(harness)
    session_keys = [key for key in keys if b"{abc}" in key]
    index_keys = [key for key in keys if b"{index}" in key]
    assert len(session_keys) == 2 and len(index_keys) == 2 and len(keys) == 4
    assert len({key_slot(key) for key in session_keys}) == 1
    assert len({key_slot(key) for key in index_keys}) == 1
    client = harness.client()
    for key in keys:  # every key expires by itself: nothing is left behind by a lost session
        assert 0 < await client.pttl(key) <= 1.5 * harness.idle * 1000 + 50
    assert b"key-a" not in b"".join(keys)  # owners are hashed: keys name nobody
    await harness.advance(harness.idle * 1.6)
    assert await _keys(harness) == []


def test_a_prefix_cannot_carry_a_hash_tag() -> None:
    assert check_prefix("mcpserve:st:") == "mcpserve:st:"
    with pytest.raises(ValueError, match="cannot contain"):
        check_prefix("app{1}:")


@asynccontextmanager
async def killed_after(script: str, harness: RedisHarness, *, says: bytes) -> AsyncIterator[None]:
    """Another replica running ``script`` on the harness's prefix: the block runs once it prints
    ``says`` (its address is taken), and the replica is SIGKILLed when the block ends."""
    async with await anyio.open_process(
        [sys.executable, "-c", script, REDIS_URL, harness.prefix], env=child_env()
    ) as child:
        try:
            assert child.stdout is not None
            with anyio.fail_after(20):
                line = await BufferedByteReceiveStream(child.stdout).receive_until(b"\n", 100)
            assert line == says
            yield
        finally:
            child.kill()
            await child.wait()


_LISTENER = textwrap.dedent(
    """
    import sys, anyio
    from mcpserve.store.redis_bus import RedisMessageBus
    from mcpserve.store.redis_connection import connect

    async def main():
        bus = RedisMessageBus(connect(sys.argv[1]), prefix=sys.argv[2], presence_ttl=30)
        async with bus.listen("answer/s/1"):
            print("listening", flush=True)
            await anyio.sleep(60)

    anyio.run(main)
    """
)


async def test_a_killed_replica_leaves_no_listener_behind(harness: RedisHarness) -> None:
    """SIGKILL: the waiting request is gone; a deliver says so at once (not after the presence
    TTL of 30 s), and another replica can listen on the address straight away."""
    bus = await harness.bus()
    async with killed_after(_LISTENER, harness, says=b"listening"):
        assert await bus.deliver("answer/s/1", {"result": {}})

    async def not_delivered() -> bool:
        return not await bus.deliver("answer/s/1", {"result": {}})

    await eventually(not_delivered, within=5)
    async with bus.listen("answer/s/1") as inbox:
        assert await bus.deliver("answer/s/1", {"n": 1})
        assert await inbox.__anext__() == {"n": 1}


_HOLDER = textwrap.dedent(
    """
    import sys, anyio
    from mcpserve.store.redis_bus import RedisMessageBus
    from mcpserve.store.redis_connection import connect

    async def main():
        bus = RedisMessageBus(connect(sys.argv[1]), prefix=sys.argv[2], presence_ttl=30)
        assert await bus.hold("session/s")
        print("holding", flush=True)
        await anyio.sleep(60)

    anyio.run(main)
    """
)


async def test_a_killed_replicas_hold_is_taken_over_at_once(harness: RedisHarness) -> None:
    """SIGKILL: the address a replica held (a GET stream's session) is free for another replica
    straight away (not after the presence TTL of 30 s), while a live holder keeps it."""
    bus = await harness.bus()
    async with killed_after(_HOLDER, harness, says=b"holding"):
        assert not await bus.hold("session/s")  # its replica is alive: the hold stands

    async def taken_over() -> bool:
        return await bus.hold("session/s")

    await eventually(taken_over, within=5)
    await bus.release_hold("session/s")


async def test_a_listener_whose_address_was_taken_over_is_ended(harness: RedisHarness) -> None:
    """After a hold lapsed (a long outage) another replica may claim the address: the old
    listener's heartbeat finds that and ends its stream, rather than two listeners sharing it."""
    bus = RedisMessageBus(harness.client(), prefix=harness.prefix, presence_ttl=0.3)
    try:
        async with bus.listen("session/s") as inbox:
            await harness.client().set(f"{harness.prefix}{{session/s}}:l", "another-replica")
            with anyio.fail_after(5):
                assert [message async for message in inbox] == []
    finally:
        await bus.aclose()


async def test_listeners_that_subscribe_at_the_same_moment_are_all_confirmed(harness: RedisHarness) -> None:
    """Each SUBSCRIBE is confirmed in order: none waits for a confirmation another one took."""
    bus = await harness.bus()
    others = await harness.bus()
    async with AsyncExitStack() as stack:
        with anyio.fail_after(4):  # a lost confirmation would wait 5 s and fail

            async def enter_subscribe() -> None:
                await stack.enter_async_context(bus.subscribe())

            async def enter_listen(n: int) -> None:
                await stack.enter_async_context(bus.listen(f"answer/s/{n}"))

            async with anyio.create_task_group() as group:
                for n in range(5):
                    group.start_soon(enter_subscribe)
                    group.start_soon(enter_listen, n)
        for n in range(5):
            assert await others.deliver(f"answer/s/{n}", {"n": n})
