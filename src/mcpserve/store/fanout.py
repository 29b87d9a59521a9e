"""In-process fan-out to a replica's own listeners; both message buses hand events to it."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

import anyio

from mcpserve.types import JSONObject

__all__ = ["Fanout", "Inbox"]


class Listener(Protocol):
    def send_nowait(self, item: JSONObject) -> None: ...


class Inbox:
    """A bounded queue with one reader: what an anyio memory object stream pair does for a
    broadcast listener, at a fraction of the memory (a deque, and one future only while the
    reader waits). Every open GET stream and ``subscriptions/listen`` stream holds one, so this
    is per-stream memory. Raises anyio's ``WouldBlock`` when full and ``ClosedResourceError``
    once closed, as a memory object send stream does.
    """

    __slots__ = ("_closed", "_items", "_max", "_waiter")

    def __init__(self, max_items: int) -> None:
        self._items: deque[JSONObject] = deque()
        self._max = max_items
        self._closed = False
        self._waiter: asyncio.Future[None] | None = None

    def send_nowait(self, item: JSONObject) -> None:
        if self._closed:
            raise anyio.ClosedResourceError
        if len(self._items) >= self._max:
            raise anyio.WouldBlock
        self._items.append(item)
        self._wake()

    def close(self) -> None:
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def __aiter__(self) -> Inbox:
        return self

    async def __anext__(self) -> JSONObject:
        while not self._items:
            if self._closed:
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.popleft()


class Fanout:
    """A listener that falls ``buffer`` events behind loses events rather than slowing senders;
    change notifications are idempotent hints, so the client recovers by re-listing."""

    def __init__(self, buffer: int) -> None:
        self.buffer = buffer
        self.listeners: set[Listener] = set()
        self.dropped = 0

    def send(self, event: JSONObject) -> None:
        for stream in tuple(self.listeners):
            self.offer(stream, event)

    def offer(self, stream: Listener, event: JSONObject) -> None:
        try:
            stream.send_nowait(event)
        except anyio.WouldBlock:
            self.dropped += 1
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            self.listeners.discard(stream)

    @asynccontextmanager
    async def receiver(self) -> AsyncIterator[AsyncIterator[JSONObject]]:
        inbox = Inbox(self.buffer)
        self.listeners.add(inbox)
        try:
            yield inbox
        finally:
            self.listeners.discard(inbox)
            inbox.close()
