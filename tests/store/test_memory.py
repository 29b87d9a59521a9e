"""What only the in-process backends promise: a timer sweep, and slow listeners never block."""

from __future__ import annotations

import pytest

from mcpserve.store.memory import MemoryEventStore, MemoryMessageBus, MemorySessionStore
from tests.support.clock import FakeClock
from tests.support.polling import eventually

pytestmark = pytest.mark.anyio


async def test_expired_sessions_and_their_events_are_swept_on_a_timer() -> None:
    clock = FakeClock()
    store = MemorySessionStore(
        idle_timeout=60, max_sessions=1000, max_per_owner=1000, sweep_interval=0.01, clock=clock
    )
    events = MemoryEventStore(store)
    for n in range(50):
        assert await store.create(f"s{n}", {"n": n}, owner="key")
        await events.append(f"s{n}", "stream", {"payload": "x" * 100})
    clock.advance(61)
    # Nothing reads the store: the sweeper alone releases the sessions and their events.
    await eventually(lambda: store.retained() == (0, 0))


async def test_the_sweeper_stops_when_no_session_is_left_and_restarts_with_the_next() -> None:
    clock = FakeClock()
    store = MemorySessionStore(idle_timeout=1, max_sessions=10, sweep_interval=0.01, clock=clock)
    assert await store.create("a", {})
    clock.advance(2)
    await eventually(lambda: not store.sweeping)
    assert await store.create("b", {})
    assert store.sweeping


async def test_slow_listener_loses_events_instead_of_blocking() -> None:
    bus = MemoryMessageBus(buffer=1)
    async with bus.subscribe():
        await bus.publish({"method": "a", "params": {}})
        await bus.publish({"method": "b", "params": {}})
    assert bus.dropped == 1
    async with bus.listen("answer/x/1"):
        assert await bus.deliver("answer/x/1", {"n": 1})
        assert await bus.deliver("answer/x/1", {"n": 2})  # still listening, message dropped
    assert bus.dropped == 2
