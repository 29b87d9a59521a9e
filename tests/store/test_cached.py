"""The per-replica read cache: what it saves, and how stale it may be (see store/cached.py)."""

from __future__ import annotations

from typing import Any

import pytest

from mcpserve.store.cached import CachedSessionStore
from mcpserve.store.memory import MemorySessionStore
from tests.support.clock import FakeClock
from tests.support.polling import eventually

pytestmark = pytest.mark.anyio


class Counting(MemorySessionStore):
    """The shared store, counting the reads and touches that reach it."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(idle_timeout=60, max_sessions=1000, clock=clock)
        self.reads = self.touches = 0

    async def load(self, session_id: str) -> Any:
        self.reads += 1
        return await super().load(session_id)

    async def touch(self, session_id: str) -> bool:
        self.touches += 1
        return await super().touch(session_id)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def test_a_busy_session_is_read_once_per_fresh_period(clock: FakeClock) -> None:
    shared = Counting(clock)
    replica = CachedSessionStore(shared, fresh_for=1.0, clock=clock)
    assert await shared.create("s", {"n": 1})
    for _ in range(50):
        assert await replica.load("s") == ({"n": 1}, 1)
        assert await replica.touch("s")
    assert (shared.reads, shared.touches) == (1, 0)
    clock.advance(1.0)
    assert await replica.load("s") == ({"n": 1}, 1)
    assert shared.reads == 2  # re-read: this is also what slides the idle expiry in the store
    clock.advance(1.0)
    assert await replica.touch("s")
    assert shared.touches == 1


async def test_another_replicas_write_is_seen_within_the_fresh_period(clock: FakeClock) -> None:
    shared = Counting(clock)
    here = CachedSessionStore(shared, fresh_for=1.0, clock=clock)
    there = CachedSessionStore(shared, fresh_for=1.0, clock=clock)
    assert await here.create("s", {"level": "info"})
    assert await here.load("s") == ({"level": "info"}, 1)
    assert await there.update("s", {"level": "debug"}, expected_version=1)
    assert await there.load("s") == ({"level": "debug"}, 2)  # its own write, at once
    assert await here.load("s") == ({"level": "info"}, 1)  # stale, for at most fresh_for
    # A compare-and-set against the stale version fails and evicts: the re-read is fresh.
    assert not await here.update("s", {"level": "error"}, expected_version=1)
    assert await here.load("s") == ({"level": "debug"}, 2)
    clock.advance(1.0)
    assert await there.delete("s")
    assert await here.load("s") is None
    await here.put("gone", {})  # a write to a session that is gone stays gone
    assert await here.get("gone") is None
    assert await here.count() == 0


async def test_the_cache_is_bounded(clock: FakeClock) -> None:
    shared = Counting(clock)
    replica = CachedSessionStore(shared, max_entries=2, clock=clock)
    for name in ("a", "b", "c"):
        assert await replica.create(name, {})
        assert await replica.load(name) is not None
    for name in ("b", "c", "a"):
        assert await replica.load(name) is not None
    assert shared.reads == 4  # "a" was pushed out by "c"


async def test_entries_that_are_no_longer_fresh_are_dropped_on_a_timer() -> None:
    clock = FakeClock()
    shared = Counting(clock)
    replica = CachedSessionStore(shared, fresh_for=0.01, clock=clock)
    for n in range(100):
        assert await replica.create(f"s{n}", {})
        assert await replica.load(f"s{n}") is not None
    assert len(replica) == 100
    clock.advance(1.0)
    await eventually(lambda: len(replica) == 0)  # idle sessions cost this replica nothing
