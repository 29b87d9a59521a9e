"""An idle SSE response carried by its connection alone: no request task, no HTTP parser.

A 2025-era GET stream sits open for as long as the client holds it, mostly idle. Under uvicorn
it would keep the connection's whole HTTP protocol object, its parser, the request's scope and
the task running the ASGI app (about 11 KiB of a 20 KiB stream). Once the response's head and
first event have gone out, the endpoint can ask (through the ASGI scope extension
:data:`DETACH_EXTENSION`) for the stream to be *detached*: the connection's protocol becomes a
:class:`DetachedStream`, a small object that frames what is written as HTTP chunks, notices the
client leave in ``connection_lost`` and tells its owner; the request's task then ends as if the
response were complete, and uvicorn's objects are freed.

When the stream ends while the client stays, the connection goes back to HTTP (a fresh protocol
of the listener's class, idle as after any response), unless it must close: its head said
``Connection: close`` (HTTP/1.0), or the server is exiting. A server that is draining gives it
back too, with the next answer saying close: the stream's head promised keep-alive, and a
connection closed after its last chunk could cross a proxy's next request on it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["DETACH_EXTENSION", "DetachedStream", "StreamOwner"]

# The ASGI scope extension: ``scope["extensions"][DETACH_EXTENSION]["detach"](send, on_end)``
# returns a DetachedStream for the response ``send`` belongs to, or None when it cannot be detached.
DETACH_EXTENSION = "mcpserve.detach_stream"

_LAST_CHUNK = b"0\r\n\r\n"


class StreamOwner(Protocol):
    """What a detached stream tells the code that writes to it."""

    def lost(self) -> None:
        """The client closed the connection: nothing written now reaches it."""
        ...

    def cancel(self) -> None:
        """The server is shutting down: end the stream (with :meth:`DetachedStream.end`)."""
        ...


class Reopen(Protocol):
    """Gives a connection whose stream ended back to HTTP, with what the client already sent."""

    def __call__(self, transport: asyncio.Transport, buffered: bytes, *, closing: bool) -> None: ...


class DetachedStream(asyncio.Protocol):
    """The protocol of a connection whose response is an open SSE stream with no task behind it.

    ``reopen(transport, buffered, closing=...)`` gives the connection back to HTTP after :meth:`end`;
    ``on_end`` runs once, when the stream ends or its connection is lost, whichever is first.
    """

    __slots__ = (
        "_buffered",
        "_close_after",
        "_closing",
        "_connections",
        "_max_buffered",
        "_on_end",
        "_reopen",
        "_writable",
        "owner",
        "transport",
    )

    def __init__(
        self,
        transport: asyncio.Transport,
        connections: set[Any],
        *,
        reopen: Reopen,
        on_end: Callable[[], None],
        close_after: bool,
        closing: bool,
        write_paused: bool,
        max_buffered: int,
    ) -> None:
        self.transport: asyncio.Transport | None = transport
        self._connections = connections
        self._reopen = reopen
        self._on_end: Callable[[], None] | None = on_end
        self._close_after = close_after  # close when the stream ends
        self._closing = closing  # the server is draining: the next answer says close
        self._max_buffered = max_buffered
        self._buffered = b""  # a request the client sent before the stream ended (pipelining)
        # Set while the transport's buffer is below its high-water mark; awaited by writers.
        self._writable: asyncio.Future[None] | None = None
        if write_paused:
            self.pause_writing()
        self.owner: StreamOwner | None = None

    @property
    def open(self) -> bool:
        """The stream can still be written (not ended, connection not lost)."""
        return self.transport is not None and not self.transport.is_closing()

    @property
    def writable(self) -> bool:
        """False while the client reads slower than the stream writes (flow control)."""
        return self._writable is None

    async def drained(self) -> None:
        """Wait until the client has read enough for more to be written (at once if it has)."""
        waiter = self._writable
        if waiter is not None:
            await asyncio.shield(waiter)

    def write(self, chunk: bytes) -> None:
        """Send ``chunk`` as one HTTP chunk; nothing once the stream ended or the client left."""
        transport = self.transport
        if chunk and transport is not None and not transport.is_closing():
            transport.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))

    def end(self) -> None:
        """Complete the response; the connection serves HTTP again (or closes, see above)."""
        transport = self.transport
        if transport is None:
            return
        self.transport = None
        self._connections.discard(self)
        self._finished()
        if transport.is_closing():
            return
        transport.write(_LAST_CHUNK)
        if self._close_after:
            transport.close()
        else:
            self._reopen(transport, self._buffered, closing=self._closing)

    def close_after_response(self) -> None:
        """Shutdown: once the stream ends, the connection's next answer says ``Connection: close``."""
        self._closing = True

    # -- asyncio.Protocol ----------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        # A client sends nothing on an open stream but, at most, its next request (pipelined):
        # kept for the HTTP protocol that takes over when the stream ends. More than a head's
        # worth is no client's behaviour: the connection closes.
        self._buffered += data
        if len(self._buffered) > self._max_buffered and self.transport is not None:
            self.transport.close()

    def eof_received(self) -> bool | None:
        return None  # the client is done: close, which ends the stream (connection_lost)

    def connection_lost(self, exc: Exception | None) -> None:
        self._connections.discard(self)
        self.transport = None
        self.resume_writing()  # wake a writer waiting for the client to read: it sees the end
        self._finished()
        owner, self.owner = self.owner, None
        if owner is not None:
            owner.lost()

    def pause_writing(self) -> None:
        if self._writable is None:
            self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        waiter, self._writable = self._writable, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- what uvicorn asks of every connection --------------------------------------------------------
    def shutdown(self) -> None:
        """uvicorn is exiting: end the stream and close the connection."""
        self._close_after = True
        owner = self.owner
        if owner is not None:
            owner.cancel()
        else:
            self.end()

    def _finished(self) -> None:
        on_end, self._on_end = self._on_end, None
        if on_end is not None:
            on_end()
