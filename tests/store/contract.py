"""One behaviour suite every state backend must pass. Backends plug in through fixtures."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio

from mcpserve.store.base import EventStore, NotificationBus, SessionStore

SessionFactory = Callable[..., Awaitable[SessionStore]]
Advance = Callable[[float], None]


async def check_session_round_trip(store: SessionStore) -> None:
    assert await store.create("s1", {"a": 1})
    assert await store.get("s1") == {"a": 1}
    await store.put("s1", {"a": 2})
    assert await store.get("s1") == {"a": 2}
    assert await store.count() == 1
    assert await store.delete("s1")
    assert await store.get("s1") is None
    assert not await store.delete("s1")
    assert not await store.touch("s1")


async def check_session_idle_expiry(store: SessionStore, advance: Advance, idle: float) -> None:
    assert await store.create("old", {"n": 1})
    advance(idle / 2)
    assert await store.touch("old")  # activity restarts the idle clock
    advance(idle * 0.75)
    assert await store.get("old") == {"n": 1}
    advance(idle * 1.5)
    assert await store.get("old") is None
    assert await store.count() == 0


async def check_session_capacity(store: SessionStore, advance: Advance, idle: float, capacity: int) -> None:
    for n in range(capacity):
        assert await store.create(f"s{n}", {"n": n})
    assert not await store.create("one-too-many", {})
    advance(idle * 2)  # expired sessions free their places
    assert await store.create("after-expiry", {})


async def check_event_replay_per_stream(store: EventStore) -> None:
    first = await store.append("sess", "streamA", {"m": 1})
    await store.append("sess", "streamB", {"m": "other"})
    await store.append("sess", "streamA", {"m": 2})
    await store.append("sess", "streamA", {"m": 3})
    replay = await store.replay("sess", first)
    assert replay is not None
    stream, events = replay
    assert stream == "streamA"
    assert [m for _, m in events] == [{"m": 2}, {"m": 3}]
    assert await store.replay("other-session", first) is None
    assert await store.replay("sess", "garbage") is None
    await store.forget("sess")
    assert await store.replay("sess", first) is None


async def check_bus_fan_out(bus: NotificationBus) -> None:
    event = {"method": "notifications/tools/list_changed", "params": {}}
    async with bus.subscribe() as first, bus.subscribe() as second:
        await bus.publish(event)
        with anyio.fail_after(5):
            assert await first.__anext__() == event
            assert await second.__anext__() == event
    await bus.publish(event)  # no listeners left: publishing still works
