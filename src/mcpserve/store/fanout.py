"""In-process fan-out to a replica's own listeners; both message buses hand events to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from mcpserve.types import JSONObject

__all__ = ["Fanout"]


class Fanout:
    """A listener that falls ``buffer`` events behind loses events rather than slowing senders;
    change notifications are idempotent hints, so the client recovers by re-listing."""

    def __init__(self, buffer: int) -> None:
        self.buffer = buffer
        self.listeners: set[MemoryObjectSendStream[JSONObject]] = set()
        self.dropped = 0

    def send(self, event: JSONObject) -> None:
        for stream in tuple(self.listeners):
            self.offer(stream, event)

    def offer(self, stream: MemoryObjectSendStream[JSONObject], event: JSONObject) -> None:
        try:
            stream.send_nowait(event)
        except anyio.WouldBlock:
            self.dropped += 1
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            self.listeners.discard(stream)

    @asynccontextmanager
    async def receiver(self) -> AsyncIterator[AsyncIterator[JSONObject]]:
        send, receive = anyio.create_memory_object_stream[JSONObject](self.buffer)
        self.listeners.add(send)
        try:
            async with receive:
                yield receive
        finally:
            self.listeners.discard(send)
            send.close()
