"""The in-memory backends pass the store contract suite."""

from __future__ import annotations

import pytest

from mcpserve.store.memory import MemoryEventStore, MemoryNotificationBus, MemorySessionStore
from tests.store import contract
from tests.support.clock import FakeClock

pytestmark = pytest.mark.anyio


async def test_session_round_trip() -> None:
    await contract.check_session_round_trip(MemorySessionStore(idle_timeout=60, max_sessions=10))


async def test_session_idle_expiry() -> None:
    clock = FakeClock()
    store = MemorySessionStore(idle_timeout=60, max_sessions=10, clock=clock)
    await contract.check_session_idle_expiry(store, clock.advance, 60)


async def test_session_capacity() -> None:
    clock = FakeClock()
    store = MemorySessionStore(idle_timeout=60, max_sessions=3, clock=clock)
    await contract.check_session_capacity(store, clock.advance, 60, 3)


async def test_event_replay_per_stream() -> None:
    await contract.check_event_replay_per_stream(MemoryEventStore())


async def test_bus_fan_out() -> None:
    await contract.check_bus_fan_out(MemoryNotificationBus())


async def test_slow_listener_loses_events_instead_of_blocking() -> None:
    bus = MemoryNotificationBus(buffer=1)
    async with bus.subscribe():
        await bus.publish({"method": "a", "params": {}})
        await bus.publish({"method": "b", "params": {}})
    assert bus.dropped == 1
