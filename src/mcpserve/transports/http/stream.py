"""One HTTP response that starts as JSON and turns into SSE the moment there is something to stream.

Most requests produce a single result and get ``application/json``; a request that emits
progress, log messages or (2025 era) server→client requests switches to ``text/event-stream``
on its first such message. 2025-era streams are resumable: every event is stored under an id
that names its stream, and the stream opens with a priming event carrying an id and ``retry``.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from mcpserve.server.failures import encode
from mcpserve.store.base import EventStore
from mcpserve.transports.http import sse
from mcpserve.types import JSONObject

__all__ = ["RETRY_MS", "ResponseStream", "Send", "json_response"]

Send = Any  # the ASGI send callable
RETRY_MS = 1000  # the reconnection delay a resumable stream asks of its client


async def json_response(
    send: Send, status: int, body: JSONObject | None, headers: list[tuple[bytes, bytes]]
) -> None:
    if body is None:
        payload = b""
        start_headers = [*headers, (b"content-length", b"0")]
    else:
        payload = encode(body)
        start_headers = [
            *headers,
            (b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(payload)),
        ]
    await send({"type": "http.response.start", "status": status, "headers": start_headers})
    await send({"type": "http.response.body", "body": payload})


class ResponseStream:
    """The response of one POST (or GET) request."""

    __slots__ = (
        "_headers",
        "_keepalive",
        "_keepalive_task",
        "_lock_",
        "_released_",
        "_resumable",
        "_send",
        "_stream_id",
        "connected",
        "finished",
        "started",
    )

    def __init__(
        self,
        send: Send,
        headers: list[tuple[bytes, bytes]],
        *,
        resumable: tuple[EventStore, str] | None = None,
        keepalive: float = 15.0,
    ) -> None:
        self._send = send
        self._headers = headers
        self._resumable = resumable
        self._keepalive = keepalive
        # Built for every request: everything only a streaming response needs is created lazily.
        self._lock_: asyncio.Lock | None = None
        self._stream_id: str | None = None
        self.started = False
        self.connected = True
        self.finished = False
        # Set whenever the current connection stops carrying this stream (detach, finish, drop).
        self._released_: asyncio.Event | None = None
        self._keepalive_task: asyncio.Task[None] | None = None

    @property
    def stream_id(self) -> str:
        if self._stream_id is None:
            self._stream_id = secrets.token_hex(8)
        return self._stream_id

    @stream_id.setter
    def stream_id(self, value: str) -> None:
        self._stream_id = value

    @property
    def _lock(self) -> asyncio.Lock:
        if self._lock_ is None:
            self._lock_ = asyncio.Lock()
        return self._lock_

    @property
    def _released(self) -> asyncio.Event:
        if self._released_ is None:
            self._released_ = asyncio.Event()
        return self._released_

    async def _write(self, chunk: bytes, more: bool = True) -> None:
        if not self.connected:
            return
        try:
            await self._send({"type": "http.response.body", "body": chunk, "more_body": more})
        except OSError:  # the client went away; 2025-era events stay in the store for resumption
            self.connected = False

    async def open_sse(self, *, keepalives: bool = True) -> None:
        """Start the SSE response. ``keepalives=False``: something else keeps it alive (a
        standalone GET stream: the replica's one task for all of them, see standalone.py)."""
        async with self._lock:
            if self.started:
                return
            self.started = True
            start = {
                "type": "http.response.start",
                "status": 200,
                "headers": [*sse.SSE_HEADERS, *self._headers],
            }
            try:
                await self._send(start)
            except OSError:
                self.connected = False
            if self._resumable is not None:
                store, session_id = self._resumable
                event_id = await store.append(session_id, self.stream_id, {})
                await self._write(sse.priming(event_id, RETRY_MS))
            if keepalives:
                self._keepalive_task = asyncio.get_running_loop().create_task(self._keepalives())

    async def _keepalives(self) -> None:
        while not self.finished:  # a detached stream may be resumed on a new connection
            await asyncio.sleep(self._keepalive)
            await self.keepalive()

    async def keepalive(self) -> None:
        """Send an SSE comment; a client that is gone shows as ``connected`` False after it."""
        async with self._lock:
            await self._write(sse.KEEPALIVE)

    async def emit(self, message: JSONObject) -> None:
        """Send one message as an SSE event (opening the stream if needed)."""
        if not self.started:
            await self.open_sse()
        async with self._lock:  # store and send as one step, so a resumption sees each event once
            event_id = None
            if self._resumable is not None:
                store, session_id = self._resumable
                event_id = await store.append(session_id, self.stream_id, message)
            await self._write(sse.event(message, event_id))

    async def finish(
        self, response: JSONObject | None, status: int, headers: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        """End the response with the final JSON-RPC message (or none, for a cancelled request).

        ``headers`` (e.g. ``Retry-After``) go out only if the response has not started yet.
        """
        if self._keepalive_task is not None:
            self._keepalive_task.cancel()
        if not self.started:
            try:
                await json_response(
                    self._send, status, response, [*self._headers, *headers] if headers else self._headers
                )
            except OSError:
                self.connected = False
            return
        if response is not None:
            await self.emit(response)
        async with self._lock:
            await self._write(b"", more=False)
            self.connected = False
            self.finished = True
            self._released.set()

    # -- 2025 era: closing the connection mid-request and resuming on another (SEP-1699) -------------
    async def detach(self) -> None:
        """End the HTTP response but not the stream: later events are stored for a resumption.

        The client reconnects with GET and ``Last-Event-ID`` (after the priming event's ``retry``)
        and :meth:`resume` carries the rest of the stream there.
        """
        if self._resumable is None:
            return
        if not self.started:
            await self.open_sse()  # the priming event gives the client an id to resume from
        async with self._lock:
            if self.finished:
                return
            await self._write(b"", more=False)
            self._release()

    async def resume(
        self,
        send: Send,
        headers: list[tuple[bytes, bytes]],
        replay: Callable[[], Awaitable[list[tuple[str, JSONObject]]]],
    ) -> asyncio.Event | None:
        """Continue this stream on a new response: events stored since ``Last-Event-ID``, then live.

        Returns an event set once that response is over (the stream finished or moved on), or
        None if the stream finished before it could be resumed; the caller then replays from
        the store alone.
        """
        async with self._lock:
            if self.finished:
                return None
            if self.connected:  # the client gave up on the old connection: end it, move on
                await self._write(b"", more=False)
                self._release()
            missed = await replay()
            self._send, self.connected = send, True
            try:
                await send(
                    {"type": "http.response.start", "status": 200, "headers": [*sse.SSE_HEADERS, *headers]}
                )
            except OSError:
                self.connected = False
            await self._write(sse.retry(RETRY_MS))
            await self._write_events(missed)
            return self._released

    async def replay(self, events: list[tuple[str, JSONObject]]) -> None:
        """Answer a resumption from stored events alone: open, write them, end."""
        await self.open_sse()
        await self._write_events(events)
        await self.finish(None, 200)

    async def _write_events(self, events: list[tuple[str, JSONObject]]) -> None:
        for event_id, message in events:
            if message:  # a priming event stores no message
                await self._write(sse.event(message, event_id))

    async def drop(self, send: Send) -> None:
        """The client closed a resumed response: stop writing to it (the stream goes on)."""
        async with self._lock:
            if self._send is send and not self.finished:
                self._release()

    def _release(self) -> None:
        self.connected = False
        self._released.set()
        self._released_ = asyncio.Event()
