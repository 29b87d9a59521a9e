"""In-process backends: one replica, nothing survives a restart."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Collection
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from mcpserve.store.base import AddressInUse, CreateOutcome, StoredSession
from mcpserve.store.events import event_id, parse_event_id, replay_from
from mcpserve.store.fanout import Fanout
from mcpserve.store.sweeping import Sweeping
from mcpserve.store.trim import release_freed_memory
from mcpserve.types import JSONObject

__all__ = ["MemoryMessageBus", "MemoryNotificationBus", "MemorySessionStore", "MemoryEventStore"]


class MemoryMessageBus:
    """Fan-out and addressed delivery inside one process (see :class:`Fanout` for slow listeners)."""

    def __init__(self, buffer: int = 256) -> None:
        self._fanout = Fanout(buffer)
        self._addressed: dict[str, MemoryObjectSendStream[JSONObject]] = {}
        self._held: set[str] = set()

    @property
    def dropped(self) -> int:
        return self._fanout.dropped

    async def publish(self, event: JSONObject) -> None:
        self._fanout.send(event)

    def subscribe(self) -> AbstractAsyncContextManager[AsyncIterator[JSONObject]]:
        return self._fanout.receiver()

    async def deliver(self, address: str, message: JSONObject) -> bool:
        stream = self._addressed.get(address)
        if stream is None:
            return False
        self._fanout.offer(stream, message)
        return True

    async def hold(self, address: str) -> bool:
        if address in self._addressed or address in self._held:
            return False
        self._held.add(address)
        return True

    async def release_hold(self, address: str) -> None:
        self._held.discard(address)

    @asynccontextmanager
    async def listen(self, address: str) -> AsyncIterator[AsyncIterator[JSONObject]]:
        if address in self._addressed or address in self._held:
            raise AddressInUse(address)
        send, receive = anyio.create_memory_object_stream[JSONObject](self._fanout.buffer)
        self._addressed[address] = send
        try:
            async with receive:
                yield receive
        finally:
            if self._addressed.get(address) is send:
                del self._addressed[address]
            send.close()


MemoryNotificationBus = MemoryMessageBus  # the broadcast-only name older code uses


class _Session:
    __slots__ = ("created", "events", "expires", "owner", "seq", "stored")

    def __init__(
        self, record: JSONObject, owner: str | None, created: float, expires: float, max_events: int
    ) -> None:
        # The record and its version as one value, replaced on every write: a load (one per
        # request) hands it out as it is, with nothing to build.
        self.stored = StoredSession(record, 1)
        self.owner = owner
        self.created = created
        self.expires = expires
        self.seq = 0
        self.events: deque[tuple[int, str, JSONObject]] = deque(maxlen=max_events)


class MemorySessionStore:
    """Sessions in a dict with a sliding idle expiry, driven by an injectable clock.

    Expired sessions are dropped by one task that sweeps every ``sweep_interval`` seconds while
    any session exists (started by ``create``), so memory is released even when nothing reads
    the store; their events live in the session entry and go with it.
    """

    def __init__(
        self,
        *,
        idle_timeout: float,
        max_sessions: int,
        max_per_owner: int | None = None,
        max_events: int = 256,
        sweep_interval: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._idle = idle_timeout
        self._max = max_sessions
        self._max_per_owner = max_per_owner
        self.max_events = max_events
        self._clock = clock
        self._sessions: dict[str, _Session] = {}
        self._owned: dict[str, set[str]] = {}
        self._sweeper = Sweeping(self.sweep, lambda: bool(self._sessions), sweep_interval)
        # Told each ended session's lifetime in seconds (deleted: until then; expired: until its expiry).
        self.on_end: Callable[[float], None] | None = None

    # -- expiry -------------------------------------------------------------------------------------
    def sweep(self) -> int:
        """Drop every expired session now; returns how many."""
        now = self._clock()
        expired = [sid for sid, entry in self._sessions.items() if entry.expires <= now]
        for sid in expired:
            self._ended(self._drop(sid), None)
        if expired:
            release_freed_memory()  # else the heap keeps their peak in RSS
        return len(expired)

    def _ended(self, entry: _Session | None, at: float | None) -> None:
        """Report a session's lifetime: until ``at``, or (None) until it expired."""
        if entry is not None and self.on_end is not None:
            self.on_end(max(0.0, (entry.expires if at is None else at) - entry.created))

    def _drop(self, session_id: str) -> _Session | None:
        entry = self._sessions.pop(session_id, None)
        if entry is not None and entry.owner is not None:
            owned = self._owned.get(entry.owner)
            if owned is not None:
                owned.discard(session_id)
                if not owned:
                    del self._owned[entry.owner]
        return entry

    def live(self, session_id: str) -> _Session | None:
        """The entry if it exists and has not expired (an expired one is dropped on the way)."""
        entry = self._sessions.get(session_id)
        if entry is not None and entry.expires <= self._clock():
            self._ended(self._drop(session_id), None)
            return None
        return entry

    def retained(self) -> tuple[int, int]:
        """(sessions, events) held in memory right now, expired or not."""
        return len(self._sessions), sum(len(entry.events) for entry in self._sessions.values())

    @property
    def sweeping(self) -> bool:
        return self._sweeper.running

    # -- SessionStore -------------------------------------------------------------------------------
    async def create(self, session_id: str, record: JSONObject, *, owner: str | None = None) -> CreateOutcome:
        if len(self._sessions) >= self._max:
            self.sweep()
            if len(self._sessions) >= self._max:
                return CreateOutcome.FULL
        if self._owner_full(owner):
            self.sweep()
            if self._owner_full(owner):
                return CreateOutcome.OWNER_FULL
        self._drop(session_id)
        now = self._clock()
        self._sessions[session_id] = _Session(record, owner, now, now + self._idle, self.max_events)
        if owner is not None:
            self._owned.setdefault(owner, set()).add(session_id)
        self._sweeper.ensure()
        return CreateOutcome.CREATED

    def _owner_full(self, owner: str | None) -> bool:
        cap = self._max_per_owner
        return owner is not None and cap is not None and len(self._owned.get(owner, ())) >= cap

    def _slide(self, session_id: str) -> _Session | None:
        """The live entry with its idle clock restarted (one clock read: this is per request)."""
        entry = self._sessions.get(session_id)
        if entry is None:
            return None
        now = self._clock()
        if entry.expires <= now:
            self._ended(self._drop(session_id), None)
            return None
        entry.expires = now + self._idle
        return entry

    async def load(self, session_id: str) -> StoredSession | None:
        entry = self._slide(session_id)
        return None if entry is None else entry.stored

    async def update(self, session_id: str, record: JSONObject, *, expected_version: int) -> bool:
        entry = self.live(session_id)
        if entry is None or entry.stored.version != expected_version:
            return False
        entry.stored = StoredSession(record, expected_version + 1)
        entry.expires = self._clock() + self._idle
        return True

    async def touch(self, session_id: str) -> bool:
        return self._slide(session_id) is not None

    async def delete(self, session_id: str) -> bool:
        entry = self._drop(session_id)
        self._ended(entry, self._clock())
        return entry is not None

    async def existing(self, session_ids: Collection[str]) -> set[str]:
        return {sid for sid in session_ids if self.live(sid) is not None}

    async def count(self) -> int:
        self.sweep()
        return len(self._sessions)

    async def get(self, session_id: str) -> JSONObject | None:
        entry = self._slide(session_id)
        return None if entry is None else entry.stored.record

    async def put(self, session_id: str, record: JSONObject) -> None:
        entry = self.live(session_id)
        if entry is not None:
            entry.stored = StoredSession(record, entry.stored.version + 1)
            entry.expires = self._clock() + self._idle


class MemoryEventStore:
    """The last ``sessions.max_events`` events of each session, kept in the session's entry."""

    def __init__(self, sessions: MemorySessionStore) -> None:
        self._sessions = sessions

    async def append(self, session_id: str, stream_id: str, message: JSONObject) -> str:
        entry = self._sessions.live(session_id)
        if entry is None:
            return event_id(stream_id, 0)  # the session is gone: nothing to resume, nothing kept
        entry.seq += 1
        entry.events.append((entry.seq, stream_id, message))
        return event_id(stream_id, entry.seq)

    async def replay(
        self, session_id: str, last_event_id: str
    ) -> tuple[str, list[tuple[str, JSONObject]]] | None:
        parsed = parse_event_id(last_event_id)
        entry = self._sessions.live(session_id)
        if parsed is None or entry is None:
            return None
        return replay_from(parsed, entry.events)

    async def forget(self, session_id: str) -> None:
        entry = self._sessions.live(session_id)
        if entry is not None:
            entry.events.clear()
