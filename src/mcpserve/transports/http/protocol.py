"""uvicorn's httptools protocol, sending each connection's writes of one loop iteration together.

uvicorn writes a response's head when the app sends ``http.response.start`` and its body when
the app sends ``http.response.body``: two ``send`` system calls for every JSON answer, and on
loopback or a fast network two wake-ups of the peer. Here a connection's writes are held until
the end of the event-loop iteration they were made in, then leave as one ``writelines`` (one
``writev``, no copying). Nothing is held longer than that iteration, so streams and slow bodies
go out as promptly as before; a connection that closes sends what it holds first, and one that
holds 64 KiB sends it at once, so the real transport's flow control still sees large bodies. A
response that completes while no other request is in flight leaves at once: with nothing to
batch it with, waiting would only add the request's remaining work to its latency.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["CoalescingHttpToolsProtocol"]

# The write high-water mark asyncio's and uvloop's transports default to: past it, send now.
_HOLD_AT_MOST = 64 * 1024


class _Iteration:
    """The connections of one event loop holding writes; flushed once, at the iteration's end.

    One flush for all of them, not one per connection: the responses of an iteration then leave
    together, and the peer is woken once for all of them rather than once per response.
    """

    __slots__ = ("__weakref__", "_held", "_loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # Weakly: _ITERATIONS maps the loop to this object, which must not keep the loop alive.
        self._loop = weakref.ref(loop)
        self._held: list[_HeldWrites] = []

    def hold(self, connection: _HeldWrites) -> None:
        if not self._held:
            loop = self._loop()
            if loop is not None:  # always, while a connection of the loop is writing
                loop.call_soon(self.flush)
        self._held.append(connection)

    def flush(self) -> None:
        held, self._held = self._held, []
        for connection in held:
            connection.flush()


_ITERATIONS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Iteration] = weakref.WeakKeyDictionary()


def _iteration_for(loop: asyncio.AbstractEventLoop) -> _Iteration:
    found = _ITERATIONS.get(loop)
    if found is None:
        found = _ITERATIONS[loop] = _Iteration(loop)
    return found


class _HeldWrites(asyncio.Transport):
    """A transport whose writes wait for the end of the loop iteration; the rest is the real one's."""

    def __init__(self, transport: asyncio.Transport, iteration: _Iteration) -> None:
        super().__init__()
        self._transport = transport
        self._iteration = iteration
        self._chunks: list[bytes] = []
        self._held = 0

    def write(self, data: bytes | bytearray | memoryview[Any]) -> None:
        if not self._chunks:
            self._iteration.hold(self)
        self._chunks.append(data if isinstance(data, bytes) else bytes(data))
        self._held += len(data)
        if self._held >= _HOLD_AT_MOST:
            self.flush()

    def flush(self) -> None:
        chunks = self._chunks
        if not chunks:
            return
        self._chunks = []
        self._held = 0
        if self._transport.is_closing():  # the peer went away: nothing can be delivered
            return
        if len(chunks) == 1:
            self._transport.write(chunks[0])
        else:
            self._transport.writelines(chunks)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._chunks = []
        self._held = 0
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + self._held

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol on a transport that sends one iteration's writes at once."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._held = _HeldWrites(transport, _iteration_for(self.loop))
        super().connection_made(self._held)

    def on_response_complete(self) -> None:
        # A finished response with no other request in flight has no batch to wait for: send it
        # now, before the request's own bookkeeping (its log line) runs, as uvicorn alone would.
        if len(self.tasks) <= 1:
            self._held.flush()
        super().on_response_complete()
