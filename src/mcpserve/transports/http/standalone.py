"""Standalone GET streams (2025 era): what an open one costs is what it holds, not a task.

An open stream mostly waits. Here nothing of it waits in a task of its own: one task per
replica (:class:`StandaloneStreams`) holds the only broadcast subscription, hands each change
notification to every open stream and, every half keepalive interval, sends a keepalive comment
to each stream that wrote nothing since the previous tick (so none is silent for longer than the
interval). A stream (:class:`StandaloneStream`) runs a task only while it has notifications to
relay: loading its session (does it want this one?) and storing the event for resumption.

It writes to a :class:`StreamSink`: the connection itself once detached from its request
(:class:`~mcpserve.transports.http.detached.DetachedStream`, under mcpserve's own uvicorn
protocol), else :class:`AsgiSink`, through which the request's task sends (any ASGI server).
Either tells the stream when the client leaves; the replica's stream watch ends it when its
session is gone or the server closes.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

import anyio

from mcpserve.errors import StoreUnavailable
from mcpserve.protocol import jsonrpc
from mcpserve.protocol.session import LegacySession
from mcpserve.store.base import EventStore, NotificationBus, SessionStore
from mcpserve.transports.http import sse
from mcpserve.transports.http.stream import RETRY_MS
from mcpserve.transports.http.tables import GetStreams
from mcpserve.transports.http.watch import StreamWatch
from mcpserve.types import JSONObject

__all__ = ["AsgiSink", "StandaloneStream", "StandaloneStreams", "StreamSink"]

logger = logging.getLogger("mcpserve.http")

_NO_MORE: JSONObject = {}  # the broadcast subscription ended (compared by identity)


class StreamSink(Protocol):
    """Where a standalone stream's SSE bytes go; it calls ``owner.lost()`` if the client leaves."""

    owner: Any

    @property
    def writable(self) -> bool:
        """False while the client reads slower than the stream writes."""
        ...

    async def drained(self) -> None: ...

    def write(self, chunk: bytes) -> None: ...

    def end(self) -> None: ...


class StandaloneStreams:
    """The open standalone GET streams of one replica, and the one task serving them all."""

    __slots__ = (
        "_bus",
        "_opening",
        "_ready",
        "_streams",
        "_task",
        "buffer",
        "closing",
        "events",
        "get_streams",
        "keepalive",
        "sessions",
        "watch",
    )

    def __init__(
        self,
        bus: Callable[[], NotificationBus],
        *,
        sessions: SessionStore,
        events: EventStore,
        get_streams: GetStreams,
        watch: StreamWatch,
        closing: anyio.Event,
        keepalive: float,
        buffer: int = 256,
    ) -> None:
        self._bus = bus
        self.sessions = sessions
        self.events = events
        self.get_streams = get_streams
        self.watch = watch
        self.closing = closing
        self.buffer = buffer  # notifications a stream may fall behind by before it loses some
        self.keepalive = keepalive  # no stream is silent for longer (seconds)
        self._streams: set[StandaloneStream] = set()
        self._opening = 0  # streams between subscribed() and add() or abandon()
        self._task: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[None] | None = None

    def __len__(self) -> int:
        return len(self._streams)

    async def subscribed(self) -> None:
        """Make sure the broadcast subscription is up (raises StoreUnavailable if Redis is down).

        It stays up for the stream being opened: the caller then calls :meth:`add` (from then on
        the stream hears every notification) or, if it failed to open, :meth:`abandon`.
        """
        task, ready = self._task, self._ready
        loop = asyncio.get_running_loop()
        if task is None or ready is None or task.get_loop() is not loop:
            self._ready = ready = loop.create_future()
            self._task = loop.create_task(self._serve(ready))
        self._opening += 1
        try:
            await asyncio.shield(ready)
        except BaseException:
            self._opening -= 1
            raise

    def add(self, stream: StandaloneStream) -> None:
        self._opening -= 1
        self._streams.add(stream)
        self.watch.watch(stream.session_id, stream)
        if self._task is None:  # the subscription failed after this stream's subscribed()
            stream.cancel()

    def abandon(self) -> None:
        self._opening -= 1

    def discard(self, stream: StandaloneStream) -> None:
        self._streams.discard(stream)
        self.watch.unwatch(stream.session_id, stream)

    async def _serve(self, ready: asyncio.Future[None]) -> None:
        idle = False
        try:
            async with self._bus().subscribe() as notifications:
                ready.set_result(None)
                idle = await self._relay(notifications, ready)
        except Exception as exc:
            if not ready.done():  # the stream that started us answers 503 (or its error)
                ready.set_exception(exc)
                return
            logger.exception("the replica's GET streams lost their broadcast subscription")
        finally:
            self._retire(ready)
            if not ready.done():  # stopped before subscribing (the loop is closing)
                ready.cancel()
        if not idle:  # the subscription ended under open streams: they would hear nothing more
            for stream in tuple(self._streams):
                stream.cancel()

    def _retire(self, ready: asyncio.Future[None]) -> None:
        """This subscription serves no stream added from now on: the next starts another."""
        if self._ready is ready:
            self._task = self._ready = None

    async def _relay(self, notifications: AsyncIterator[JSONObject], ready: asyncio.Future[None]) -> bool:
        """Every notification to every stream, and the keepalive ticks, while streams are open.

        True once none is open (the subscription is no longer needed).
        """
        loop = asyncio.get_running_loop()
        next_tick = loop.time() + self.keepalive / 2
        while self._streams or self._opening:
            event = None
            with anyio.move_on_after(max(0.0, next_tick - loop.time())):
                event = await anext(notifications, _NO_MORE)
            if event is _NO_MORE:
                return False
            if event is not None:
                for stream in tuple(self._streams):
                    stream.offer(event)
            if loop.time() >= next_tick:
                next_tick = loop.time() + self.keepalive / 2
                for stream in tuple(self._streams):
                    stream.tick()
        self._retire(ready)  # before leaving the subscription, which awaits
        return True


class StandaloneStream:
    """One open standalone GET stream: a few references and, while relaying, one task."""

    __slots__ = (
        "_hub",
        "_pending",
        "_relaying",
        "_sink",
        "_stream_id",
        "_wrote",
        "closed",
        "ended",
        "session_id",
    )

    def __init__(self, hub: StandaloneStreams, session_id: str, stream_id: str, sink: StreamSink) -> None:
        self._hub = hub
        self.session_id = session_id
        self._stream_id = stream_id
        self._sink = sink
        self._pending: deque[JSONObject] | None = None
        self._relaying: asyncio.Task[None] | None = None
        self._wrote = False
        self.ended = False
        self.closed: asyncio.Task[None] | None = None  # releasing the claim, then ending
        sink.owner = self

    # -- from the replica's task ------------------------------------------------------------------------
    def offer(self, event: JSONObject) -> None:
        """A change notification for every stream: relayed if this session wants it."""
        if self.ended:
            return
        pending = self._pending
        if pending is None:
            pending = self._pending = deque()
        if len(pending) >= self._hub.buffer:
            return  # a hint lost, as the bus drops for any listener this far behind
        pending.append(event)
        if self._relaying is None:
            self._relaying = asyncio.get_running_loop().create_task(self._relay())

    def tick(self) -> None:
        """A keepalive unless the stream wrote since the last tick (or is busy, or backed up)."""
        if self._wrote:
            self._wrote = False
        elif not self.ended and self._relaying is None and self._sink.writable:
            self._sink.write(sse.KEEPALIVE)

    async def _relay(self) -> None:
        hub, pending = self._hub, self._pending
        try:
            while pending and not self.ended:
                event = pending.popleft()
                stored = await hub.sessions.load(self.session_id)
                if stored is None:
                    break  # the session is gone: so is its stream
                if not LegacySession.from_json(stored.record).wants(event):
                    continue
                message = jsonrpc.notification(event["method"], event["params"])
                await self._sink.drained()
                event_id = await hub.events.append(self.session_id, self._stream_id, message)
                if self.ended:
                    return  # stored, so a resumption delivers it
                self._sink.write(sse.event(message, event_id))
                self._wrote = True
            else:
                return
        except StoreUnavailable:
            logger.warning("a GET stream ended: the session store did not answer")
        except Exception:
            logger.exception("a GET stream failed relaying a notification")
        finally:
            self._relaying = None
        self.cancel()

    # -- ending ---------------------------------------------------------------------------------------------
    def cancel(self) -> None:
        """End the stream: its session is gone, or the server is closing (then with a ``retry``
        hint first, so the client resumes promptly, on another replica behind a balancer)."""
        if not self.ended:
            self._stop(end=True)

    def lost(self) -> None:
        """The client left."""
        if not self.ended:
            self._stop(end=False)

    def _stop(self, *, end: bool) -> None:
        self.ended = True
        relaying = self._relaying
        if relaying is not None and relaying is not asyncio.current_task():
            relaying.cancel()
        self._hub.discard(self)
        self.closed = asyncio.get_running_loop().create_task(self._close(end))

    async def _close(self, end: bool) -> None:
        """Release the session's GET stream (it may live in Redis), then end the response: a
        client that reconnects at once finds the stream free."""
        try:
            await self._hub.get_streams.release(self.session_id)
        except StoreUnavailable:  # a claim in Redis lapses by its TTL
            logger.warning("could not release a GET stream: the session store did not answer")
        finally:
            if end:
                if self._hub.closing.is_set():
                    self._sink.write(sse.retry(RETRY_MS))
                self._sink.end()


class AsgiSink:
    """A standalone stream's writes, sent by its request's task through any ASGI server."""

    __slots__ = ("_chunks", "_emptied", "_ended", "_waiter", "owner")

    def __init__(self) -> None:
        self._chunks: deque[bytes] = deque()
        self._ended = False
        self._waiter: asyncio.Future[None] | None = None
        self._emptied: asyncio.Future[None] | None = None
        self.owner: Any = None

    @property
    def writable(self) -> bool:
        return not self._chunks

    async def drained(self) -> None:
        if self._chunks:
            self._emptied = emptied = asyncio.get_running_loop().create_future()
            await emptied

    def write(self, chunk: bytes) -> None:
        if not self._ended:
            self._chunks.append(chunk)
            self._wake()

    def end(self) -> None:
        self._ended = True
        self._wake()

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def run(self, send: Any, receive: Any) -> None:
        """Send what is written until the stream ends; tell the owner if the client leaves."""
        async with anyio.create_task_group() as group:
            group.start_soon(self._hear_disconnect, receive, group.cancel_scope)
            await self._send_all(send)
            group.cancel_scope.cancel()

    async def _send_all(self, send: Any) -> None:
        chunks = self._chunks
        while True:
            while chunks:
                await send({"type": "http.response.body", "body": chunks.popleft(), "more_body": True})
            emptied, self._emptied = self._emptied, None
            if emptied is not None and not emptied.done():
                emptied.set_result(None)
            if self._ended:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter

    async def _hear_disconnect(self, receive: Any, scope: anyio.CancelScope) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self._ended = True
        owner = self.owner
        if owner is not None:
            owner.lost()
        scope.cancel()
