"""In-process backends: one replica, nothing survives a restart."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from mcpserve.types import JSONObject

__all__ = ["MemoryNotificationBus"]


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
