"""The per-replica session read cache: two caches on one store and one invalidation bus stand
for two replicas."""

from __future__ import annotations

import pytest

from mcpserve.store.base import StoredSession
from mcpserve.store.cache import CachedSessionStore
from mcpserve.store.memory import MemoryMessageBus, MemorySessionStore
from tests.support.polling import eventually

pytestmark = pytest.mark.anyio


class CountingStore(MemorySessionStore):
    def __init__(self) -> None:
        super().__init__(idle_timeout=60, max_sessions=100)
        self.loads = 0

    async def load(self, session_id: str) -> StoredSession | None:
        self.loads += 1
        return await super().load(session_id)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def _replicas(
    store: CountingStore, clock: Clock, max_entries: int = 100
) -> tuple[CachedSessionStore, CachedSessionStore]:
    bus = MemoryMessageBus()
    first, second = (
        CachedSessionStore(store, bus, max_age=2.0, clock=clock, max_entries=max_entries) for _ in range(2)
    )
    for cache in (first, second):
        await cache.load("warm-up")  # starts the invalidation listener
        await eventually(lambda cache=cache: cache._listening)  # type: ignore[misc]
    return first, second


async def test_a_session_read_twice_costs_one_store_read_until_it_ages_out() -> None:
    store, clock = CountingStore(), Clock()
    first, _ = await _replicas(store, clock)
    await store.create("s", {"n": 1})
    before = store.loads
    assert (await first.load("s")) == StoredSession({"n": 1}, 1)
    assert (await first.load("s")) == StoredSession({"n": 1}, 1)
    assert store.loads == before + 1
    clock.now += 2.0  # max_age: read again, which also restarts the idle clock in the store
    await first.load("s")
    assert store.loads == before + 2
    await first.aclose()


async def test_a_write_on_one_replica_is_seen_at_once_on_the_other() -> None:
    store, clock = CountingStore(), Clock()
    first, second = await _replicas(store, clock)
    await store.create("s", {"n": 1})
    assert (await second.load("s")) == StoredSession({"n": 1}, 1)
    assert await first.update("s", {"n": 2}, expected_version=1)
    await eventually(lambda: "s" not in second._entries)
    assert (await second.load("s")) == StoredSession({"n": 2}, 2)
    # A write based on the stale version fails (compare-and-set passes through the cache).
    assert not await second.update("s", {"n": 3}, expected_version=1)
    assert await first.delete("s")
    await eventually(lambda: "s" not in second._entries)
    assert await second.load("s") is None
    assert await second.get("s") is None
    await first.aclose()
    await second.aclose()


async def test_a_load_that_raced_an_invalidation_is_not_cached_and_the_cache_is_bounded() -> None:
    store, clock = CountingStore(), Clock()
    first, _ = await _replicas(store, clock, max_entries=2)
    for name in ("a", "b", "c"):
        await store.create(name, {"name": name})
        await first.load(name)
    assert list(first._entries) == ["b", "c"]  # the oldest went first

    original = store.load

    async def load_then_invalidate(session_id: str) -> StoredSession | None:
        stored = await original(session_id)
        first._forget("someone else")  # an invalidation heard while this read was under way
        return stored

    store.load = load_then_invalidate  # type: ignore[method-assign]
    await store.create("d", {"name": "d"})
    assert await first.load("d") is not None
    assert "d" not in first._entries
    await first.aclose()


async def test_pass_through_operations() -> None:
    store, clock = CountingStore(), Clock()
    first, second = await _replicas(store, clock)
    assert await first.create("s", {"n": 1})
    assert await first.touch("s")
    assert await first.count() == 1
    await second.load("s")
    await first.put("s", {"n": 5})
    await eventually(lambda: "s" not in second._entries)
    assert await second.get("s") == {"n": 5}
    await first.aclose()
    await second.aclose()
