"""One behaviour suite every state backend must pass. Backends plug in through a ``Harness``.

``advance(seconds)`` moves the backend's time on: a fake clock for memory, real waiting for Redis
(whose TTLs cannot be faked), so harnesses pick ``idle`` to match (minutes vs. a fraction of a
second). ``bus()`` called twice gives two replicas' buses over the same shared state.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

import anyio
import pytest

from mcpserve.store.base import AddressInUse, CreateOutcome, EventStore, MessageBus, SessionStore


class Harness(Protocol):
    idle: float

    async def sessions(
        self, *, max_sessions: int = 100, max_per_owner: int | None = None, max_events: int = 256
    ) -> SessionStore: ...

    def events(self, sessions: SessionStore) -> EventStore: ...

    async def bus(self) -> MessageBus: ...

    async def advance(self, seconds: float) -> None: ...


Check = Callable[[Harness], Awaitable[None]]


async def check_session_round_trip(h: Harness) -> None:
    store = await h.sessions()
    assert await store.create("s1", {"a": 1}) is CreateOutcome.CREATED
    assert await store.load("s1") == ({"a": 1}, 1)
    assert await store.update("s1", {"a": 2}, expected_version=1)
    assert await store.load("s1") == ({"a": 2}, 2)
    assert not await store.update("s1", {"a": 3}, expected_version=1)  # stale version
    assert await store.load("s1") == ({"a": 2}, 2)
    assert await store.get("s1") == {"a": 2}
    await store.put("s1", {"a": 4})
    assert await store.load("s1") == ({"a": 4}, 3)
    assert await store.count() == 1
    assert await store.touch("s1")
    assert await store.delete("s1")
    assert await store.load("s1") is None
    assert await store.get("s1") is None
    assert not await store.delete("s1")
    assert not await store.touch("s1")
    assert not await store.update("s1", {}, expected_version=3)
    await store.put("s1", {"a": 5})  # an unconditional write never resurrects a deleted session
    assert await store.load("s1") is None
    assert await store.count() == 0


async def check_compare_and_set_race(h: Harness) -> None:
    """Two replicas update the same version at once: exactly one wins, the other re-reads."""
    first, second = await h.sessions(), await h.sessions()
    assert await first.create("race", {"level": "info"})
    for round_ in range(5):
        stored = await first.load("race")
        assert stored is not None
        results: list[bool] = []

        async def write(store: SessionStore, value: str, version: int, results: list[bool]) -> None:
            results.append(await store.update("race", {"level": value}, expected_version=version))

        async with anyio.create_task_group() as group:
            group.start_soon(write, first, f"a{round_}", stored.version, results)
            group.start_soon(write, second, f"b{round_}", stored.version, results)
        assert sorted(results) == [False, True]
        after = await second.load("race")
        assert after is not None and after.version == stored.version + 1


async def check_session_idle_expiry(h: Harness) -> None:
    store = await h.sessions()
    events = h.events(store)
    assert await store.create("old", {"n": 1})
    first = await events.append("old", "s", {"m": 1})
    await events.append("old", "s", {"m": 2})
    await h.advance(h.idle * 0.6)
    assert await store.load("old") is not None  # activity restarts the idle clock
    await h.advance(h.idle * 0.6)
    assert await store.touch("old")
    await h.advance(h.idle * 0.6)
    assert await store.load("old") == ({"n": 1}, 1)
    assert await events.replay("old", first) == ("s", [("s/2", {"m": 2})])  # events live with it
    await h.advance(h.idle * 1.6)
    assert await store.load("old") is None
    assert await events.replay("old", first) is None  # and go with it
    assert await store.count() == 0


async def check_existing_does_not_slide_expiry(h: Harness) -> None:
    """``existing`` names the live sessions among many ids, and checking keeps none of them alive."""
    store = await h.sessions()
    assert (
        await store.create("kept", {}) and await store.create("idle", {}) and await store.create("gone", {})
    )
    assert await store.delete("gone")
    assert await store.existing(["kept", "idle", "gone", "never"]) == {"kept", "idle"}
    assert await store.existing([]) == set()
    await h.advance(h.idle * 0.6)
    assert await store.touch("kept")
    assert await store.existing(["kept", "idle"]) == {"kept", "idle"}
    await h.advance(h.idle * 0.6)
    assert await store.existing(["kept", "idle"]) == {"kept"}  # the checks did not keep "idle"


async def check_session_capacity(h: Harness) -> None:
    store = await h.sessions(max_sessions=3)
    for n in range(3):
        assert await store.create(f"s{n}", {"n": n}) is CreateOutcome.CREATED
    outcome = await store.create("one-too-many", {})
    assert outcome is CreateOutcome.FULL and not outcome
    assert await store.delete("s0")
    assert await store.create("after-delete", {})
    await h.advance(h.idle * 2)  # expired sessions free their places
    assert await store.count() == 0
    assert await store.create("after-expiry", {})


async def check_owner_cap(h: Harness) -> None:
    """One owner cannot take more than its cap; another still can; a freed place is reusable."""
    store = await h.sessions(max_sessions=10, max_per_owner=2)
    assert await store.create("a1", {}, owner="key-a")
    assert await store.create("a2", {}, owner="key-a")
    assert await store.create("a3", {}, owner="key-a") is CreateOutcome.OWNER_FULL
    assert await store.create("b1", {}, owner="key-b") is CreateOutcome.CREATED
    assert await store.create("anon", {}) is CreateOutcome.CREATED  # no owner: only the total cap
    assert await store.delete("a1")
    assert await store.create("a3", {}, owner="key-a") is CreateOutcome.CREATED
    assert await store.create("a4", {}, owner="key-a") is CreateOutcome.OWNER_FULL
    await h.advance(h.idle * 2)
    assert await store.create("a5", {}, owner="key-a")
    assert await store.create("a6", {}, owner="key-a")
    assert await store.count() == 2


async def check_event_replay_per_stream(h: Harness) -> None:
    sessions = await h.sessions()
    store = h.events(sessions)
    assert await sessions.create("sess", {})
    first = await store.append("sess", "streamA", {"m": 1})
    await store.append("sess", "streamB", {"m": "other"})
    await store.append("sess", "streamA", {"m": 2})
    last = await store.append("sess", "streamA", {"m": 3})
    replay = await store.replay("sess", first)
    assert replay is not None
    stream, events = replay
    assert stream == "streamA"
    assert [m for _, m in events] == [{"m": 2}, {"m": 3}]
    assert [event_id for event_id, _ in events][-1] == last
    assert await store.replay("sess", last) == ("streamA", [])
    assert await store.replay("other-session", first) is None
    assert await store.replay("sess", "garbage") is None
    assert await store.replay("sess", "streamC/1") is None
    await store.forget("sess")
    assert await store.replay("sess", first) is None


async def check_event_ids_are_shared_across_replicas(h: Harness) -> None:
    """Events written by one replica replay on another, and ids never collide between them."""
    sessions = await h.sessions()
    one, other = h.events(sessions), h.events(await h.sessions())
    assert await sessions.create("shared", {})
    first = await one.append("shared", "post-1", {"m": 1})
    second = await other.append("shared", "post-1", {"m": 2})
    assert first != second
    assert await other.replay("shared", first) == ("post-1", [(second, {"m": 2})])


async def check_events_bounded_per_session(h: Harness) -> None:
    """The bound is per session, across streams: many short streams cannot grow it."""
    sessions = await h.sessions(max_events=5)
    store = h.events(sessions)
    assert await sessions.create("busy", {})
    ids = [await store.append("busy", f"stream-{n}", {"n": n}) for n in range(12)]
    assert await store.replay("busy", ids[0]) is None  # pushed out with its whole stream
    assert await store.replay("busy", ids[-1]) == ("stream-11", [])
    for n in range(7, 12):
        assert await store.replay("busy", ids[n]) is not None
    assert await store.replay("busy", ids[6]) is None


async def check_events_of_unknown_sessions_are_not_kept(h: Harness) -> None:
    sessions = await h.sessions()
    store = h.events(sessions)
    event_id = await store.append("nobody", "s", {"m": 1})
    assert await store.replay("nobody", event_id) is None
    assert await sessions.create("nobody", {})
    assert await store.replay("nobody", event_id) is None


async def check_bus_fan_out(h: Harness) -> None:
    here, there = await h.bus(), await h.bus()
    event = {"method": "notifications/tools/list_changed", "params": {}}
    async with here.subscribe() as first, there.subscribe() as second:
        await there.publish(event)
        with anyio.fail_after(5):
            assert await first.__anext__() == event
            assert await second.__anext__() == event
    await here.publish(event)  # no listeners left: publishing still works


async def check_addressed_delivery(h: Harness) -> None:
    """A message for an address reaches its one listener, on whichever replica it runs."""
    here, there = await h.bus(), await h.bus()
    assert not await here.deliver("answer/s/1", {"result": {}})  # nobody listens yet
    async with there.listen("answer/s/1") as answers:
        with pytest.raises(AddressInUse):
            async with here.listen("answer/s/1"):
                pass
        assert await here.deliver("answer/s/1", {"result": {"n": 1}})
        assert await there.deliver("answer/s/1", {"result": {"n": 2}})
        assert not await here.deliver("answer/s/2", {"result": {}})
        with anyio.fail_after(5):
            assert await answers.__anext__() == {"result": {"n": 1}}
            assert await answers.__anext__() == {"result": {"n": 2}}
    assert not await here.deliver("answer/s/1", {"result": {}})  # the listener left
    async with here.listen("answer/s/1") as again:  # the address is free again
        assert await there.deliver("answer/s/1", {"n": 3})
        with anyio.fail_after(5):
            assert await again.__anext__() == {"n": 3}


async def check_held_addresses(h: Harness) -> None:
    """An address held (a session's one GET stream) is taken for holders and listeners alike,
    on every replica, until it is released."""
    here, there = await h.bus(), await h.bus()
    assert await here.hold("session/s")
    assert not await there.hold("session/s")
    assert not await here.hold("session/s")
    with pytest.raises(AddressInUse):
        async with there.listen("session/s"):
            pass
    assert not await there.deliver("session/s", {"n": 1})  # nobody listens there
    assert await there.hold("session/t")  # other addresses are free
    await here.release_hold("session/s")
    assert await there.hold("session/s")  # free again
    await there.release_hold("session/s")
    await there.release_hold("session/t")
    async with here.listen("session/s"):
        assert not await there.hold("session/s")


ALL: tuple[Check, ...] = (
    check_session_round_trip,
    check_compare_and_set_race,
    check_session_idle_expiry,
    check_session_capacity,
    check_owner_cap,
    check_existing_does_not_slide_expiry,
    check_event_replay_per_stream,
    check_event_ids_are_shared_across_replicas,
    check_events_bounded_per_session,
    check_events_of_unknown_sessions_are_not_kept,
    check_bus_fan_out,
    check_addressed_delivery,
    check_held_addresses,
)
