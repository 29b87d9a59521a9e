"""In-process backends: one replica, nothing survives a restart."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from mcpserve.types import JSONObject

__all__ = ["MemoryNotificationBus", "MemorySessionStore", "MemoryEventStore"]


class MemoryNotificationBus:
    """Fan-out inside one process. A listener that falls ``buffer`` events behind loses events
    rather than slowing publishers; change notifications are idempotent hints, so the client
    recovers by re-listing."""

    def __init__(self, buffer: int = 256) -> None:
        self._buffer = buffer
        self._listeners: set[MemoryObjectSendStream[JSONObject]] = set()
        self.dropped = 0

    async def publish(self, event: JSONObject) -> None:
        for stream in tuple(self._listeners):
            try:
                stream.send_nowait(event)
            except anyio.WouldBlock:
                self.dropped += 1
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                self._listeners.discard(stream)

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[AsyncIterator[JSONObject]]:
        send, receive = anyio.create_memory_object_stream[JSONObject](self._buffer)
        self._listeners.add(send)
        try:
            async with receive:
                yield receive
        finally:
            self._listeners.discard(send)
            send.close()


class MemorySessionStore:
    """Sessions in a dict with idle expiry, driven by an injectable clock."""

    def __init__(
        self, *, idle_timeout: float, max_sessions: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._idle = idle_timeout
        self._max = max_sessions
        self._clock = clock
        self._records: dict[str, tuple[float, JSONObject]] = {}
        self._created: dict[str, float] = {}
        # Told each ended session's lifetime in seconds (deleted: until now; expired: until its expiry).
        self.on_end: Callable[[float], None] | None = None

    def _ended(self, session_id: str, at: float) -> None:
        created = self._created.pop(session_id, None)
        if created is not None and self.on_end is not None:
            self.on_end(max(0.0, at - created))

    def _sweep(self) -> None:
        now = self._clock()
        for key in [k for k, (expires, _) in self._records.items() if expires <= now]:
            self._ended(key, self._records.pop(key)[0])

    async def create(self, session_id: str, record: JSONObject) -> bool:
        if len(self._records) >= self._max:
            self._sweep()
            if len(self._records) >= self._max:
                return False
        now = self._clock()
        self._records[session_id] = (now + self._idle, record)
        self._created[session_id] = now
        return True

    async def get(self, session_id: str) -> JSONObject | None:
        entry = self._records.get(session_id)
        if entry is None:
            return None
        if entry[0] <= self._clock():
            del self._records[session_id]
            self._ended(session_id, entry[0])
            return None
        return entry[1]

    async def put(self, session_id: str, record: JSONObject) -> None:
        self._records[session_id] = (self._clock() + self._idle, record)

    async def touch(self, session_id: str) -> bool:
        record = await self.get(session_id)
        if record is None:
            return False
        await self.put(session_id, record)
        return True

    async def delete(self, session_id: str) -> bool:
        if self._records.pop(session_id, None) is None:
            return False
        self._ended(session_id, self._clock())
        return True

    async def count(self) -> int:
        self._sweep()
        return len(self._records)


class MemoryEventStore:
    """The last ``per_stream`` events of each stream, per session."""

    def __init__(self, per_stream: int = 256) -> None:
        self._per_stream = per_stream
        self._streams: dict[str, dict[str, deque[tuple[int, JSONObject]]]] = {}
        self._seq = 0

    async def append(self, session_id: str, stream_id: str, message: JSONObject) -> str:
        self._seq += 1
        streams = self._streams.setdefault(session_id, {})
        events = streams.setdefault(stream_id, deque(maxlen=self._per_stream))
        events.append((self._seq, message))
        return f"{stream_id}/{self._seq}"

    async def replay(
        self, session_id: str, last_event_id: str
    ) -> tuple[str, list[tuple[str, JSONObject]]] | None:
        stream_id, _, seq = last_event_id.rpartition("/")
        events = self._streams.get(session_id, {}).get(stream_id)
        if events is None or not seq.isdigit():
            return None
        after = int(seq)
        return stream_id, [(f"{stream_id}/{n}", m) for n, m in events if n > after]

    async def forget(self, session_id: str) -> None:
        self._streams.pop(session_id, None)
