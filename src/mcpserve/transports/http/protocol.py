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

The same protocol enforces :class:`~mcpserve.transports.http.connections.ConnectionLimits`, at costs
the hot path does not notice: the head's bytes are counted only while a head is still
incomplete after a read (431 past the limit, before httptools buffers more of it); one watchdog
timer per connection, re-armed lazily, ends a head or a body that takes too long (408); a
connection past the cap is answered 503 and closed before any of its bytes are read. On
shutdown (:meth:`CoalescingHttpToolsProtocol.close_after_response`) every response carries
``Connection: close``, so a proxy sends its next request elsewhere.

Every request's scope offers :data:`~mcpserve.transports.http.detached.DETACH_EXTENSION`: an open
SSE response can leave its task and this protocol for a :class:`~.detached.DetachedStream`
(see there), which hands the connection back to a fresh protocol of this class when it ends.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from mcpserve.transports.http.connections import ConnectionLimits
from mcpserve.transports.http.detached import DETACH_EXTENSION, DetachedStream

__all__ = ["CoalescingHttpToolsProtocol", "limited"]

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


def _refusal(status: bytes, error: bytes) -> bytes:
    body = b'{"error":"' + error + b'"}'
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body)
    ) + body


# uvicorn's data_received, called directly: this runs for every read, and super() builds an
# object and walks the MRO each time.
_parse = HttpToolsProtocol.data_received

_HEAD_TOO_LARGE = _refusal(b"431 Request Header Fields Too Large", b"request header fields too large")
_TIMED_OUT = _refusal(b"408 Request Timeout", b"request not received in time")
_AT_CAPACITY = _refusal(b"503 Service Unavailable", b"server at connection capacity; retry later")


def _detach(send: Any, on_end: Callable[[], None]) -> DetachedStream | None:
    """The scope extension: detach the open response ``send`` (uvicorn's own) belongs to."""
    cycle = getattr(send, "__self__", None)
    if not isinstance(cycle, RequestResponseCycle):
        return None
    protocol = cycle.transport.get_protocol()  # found, not referenced: no cycle to collect
    if not isinstance(protocol, CoalescingHttpToolsProtocol):
        return None
    return protocol.detach_stream(cycle, on_end)


# One read-only mapping for every scope: offering the extension costs a request nothing.
_EXTENSIONS = MappingProxyType({DETACH_EXTENSION: MappingProxyType({"detach": _detach})})


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol on a transport that sends one iteration's writes at once,
    enforcing the listener's connection limits."""

    limits = ConnectionLimits()
    _head_since: float | None
    _body_since: float | None
    _watchdog: asyncio.TimerHandle | None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._held = _HeldWrites(transport, _iteration_for(self.loop))
        self._closing = False
        self._head_bytes = 0
        self._body_since = None
        self._watchdog = None
        if len(self.connections) >= self.limits.max_connections:
            self._refuse_over_capacity(transport)
            return
        super().connection_made(self._held)
        self._head_since = now = self.loop.time()  # the first request's head is due from now
        self._arm(now + self.limits.header_timeout)

    def data_received(self, data: bytes) -> None:
        cycle = self.cycle
        _parse(self, data)
        current = self.cycle
        if current is not cycle:  # a head completed in this read: the usual case, a few stores
            self._head_since = None
            self._head_bytes = 0
            if self._closing:
                current.keep_alive = False
            if current.more_body:  # its body is still to come
                self._body_started()
            return
        if current is not None and current.more_body:
            return  # more of a body: the watchdog times it
        self._head_arriving(len(data))

    def on_message_begin(self) -> None:
        # uvicorn's, with the scope's extensions (one key more in the literal, no call more).
        self.url = b""
        self.expect_100_continue = False
        self.headers = []
        self.scope = {
            "type": "http",
            "asgi": {"version": self.asgi_version, "spec_version": "2.3"},
            "http_version": "1.1",
            "server": self.server,
            "client": self.client,
            "scheme": self.scheme,  # type: ignore[typeddict-item]
            "root_path": self.root_path,
            "headers": self.headers,
            "state": self.app_state.copy(),
            "extensions": _EXTENSIONS,  # type: ignore[typeddict-item]  # read-only, not a dict
        }

    def connection_lost(self, exc: Exception | None) -> None:
        if self._watchdog is not None:  # a closed connection's protocol is not kept until it fires
            self._watchdog.cancel()
            self._watchdog = None
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        # A finished response with no other request in flight has no batch to wait for: send it
        # now, before the request's own bookkeeping (its log line) runs, as uvicorn alone would.
        if len(self.tasks) <= 1:
            self._held.flush()
        super().on_response_complete()

    def close_after_response(self) -> None:
        """Shutdown: the next response this connection writes says ``Connection: close``.

        Only a head still to be written can say so. A response already under way has promised
        keep-alive: closing after it would cross the next request a proxy sends on the connection
        it just got back, which the proxy cannot retry (a POST), so the connection stays open and
        its next answer says close. An idle connection stays open likewise, until uvicorn's
        keep-alive timer or the server's exit closes it.
        """
        self._closing = True
        cycle = self.cycle
        if cycle is not None and not cycle.response_started:
            cycle.keep_alive = False

    # -- detached SSE streams (detached.py) ---------------------------------------------------------------
    def detach_stream(self, cycle: RequestResponseCycle, on_end: Callable[[], None]) -> DetachedStream | None:
        """Hand the connection of ``cycle``'s open, chunked response to a DetachedStream.

        None (nothing changes) unless the response is this connection's current one, started,
        chunked and not complete, and the connection is neither closing nor holding a
        pipelined request. uvicorn's task for the request then ends as after a complete
        response, and this protocol, its parser and the request's scope are freed.
        """
        if (
            cycle is not self.cycle
            or self.pipeline
            or not cycle.response_started
            or cycle.response_complete
            or not cycle.chunked_encoding
            or cycle.disconnected
            or self.flow.read_paused
            or self._held.is_closing()
        ):
            return None
        self._held.flush()  # the head and first event go out now, in order
        transport = self._held._transport
        stream = DetachedStream(
            transport,
            self.connections,
            reopen=_Reopen(self),
            on_end=on_end,
            close_after=not cycle.keep_alive,  # what its head said
            closing=self._closing,
            write_paused=self.flow.write_paused,
            max_buffered=self.limits.max_header_bytes,
        )
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        self.connections.discard(self)
        self.connections.add(stream)  # type: ignore[arg-type]  # still counted against the cap
        transport.set_protocol(stream)
        # uvicorn's task sees a complete response and ends quietly; a later send raises.
        cycle.response_complete = True
        self.cycle = None  # type: ignore[assignment]
        self.parser = None  # type: ignore[assignment]  # it refers back to this protocol
        return stream

    def resume_after_stream(self, transport: asyncio.Transport, buffered: bytes, *, closing: bool) -> None:
        """Serve HTTP on a connection whose detached stream ended: idle, as after a response.

        ``closing``: the server is shutting down, so the next answer says ``Connection: close``.
        """
        self.connection_made(transport)
        if self._held.is_closing():
            return  # over the connection cap: refused
        self._closing = closing
        self._head_since = None  # no head is due: uvicorn's keep-alive timer governs
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler
        )
        if buffered:
            self.data_received(buffered)

    def _unsupported_upgrade_warning(self) -> None:
        # uvicorn writes two warnings per Upgrade request; MCP has no WebSocket transport and the
        # request is answered as plain HTTP, so one line per client and window is plenty.
        self._offence("upgrade", "WebSocket upgrade requested; MCP has none, answered as plain HTTP")

    # -- limits ------------------------------------------------------------------------------------
    def _head_arriving(self, size: int) -> None:
        """Part of a request head arrived and the head is not complete yet (the rare path)."""
        if self._held.is_closing():  # uvicorn already refused the request (400)
            return
        self._head_bytes += size
        if self._head_bytes > self.limits.max_header_bytes:
            self._offence(
                "header_size", f"request head over {self.limits.max_header_bytes} bytes: answered 431"
            )
            self._end(_HEAD_TOO_LARGE)
            return
        if self._head_since is None:
            self._head_since = now = self.loop.time()
            self._arm(now + self.limits.header_timeout)

    def _body_started(self) -> None:
        self._body_since = now = self.loop.time()
        self._arm(now + self.limits.body_timeout)

    def _arm(self, deadline: float) -> None:
        """Make sure the watchdog runs by ``deadline``.

        It never sleeps longer than the shorter timeout, so a phase that starts while it is armed
        is due no earlier than it wakes: an armed watchdog never needs moving forward.
        """
        if self._watchdog is None:
            deadline = min(deadline, self.loop.time() + self.limits.watch_interval)
            self._watchdog = self.loop.call_at(deadline, self._watch)

    def _watch(self) -> None:
        self._watchdog = None
        if self._held.is_closing():
            return
        now = self.loop.time()
        cycle = self.cycle
        if cycle is not None and cycle.more_body:
            since, limit, what = self._body_since, self.limits.body_timeout, "body"
        else:
            since, limit, what = self._head_since, self.limits.header_timeout, "head"
        if since is None:
            return  # nothing is being read: the next partial head or body re-arms
        if now - since < limit:
            self._arm(since + limit)
            return
        if cycle is None and self._head_bytes == 0:
            self._end(None)  # connected and never sent a byte (a browser's spare socket): idle
            return
        self._offence(f"{what}_timeout", f"request {what} not received within {limit:g} s: closed")
        started = cycle is not None and cycle.more_body and cycle.response_started
        self._end(None if started else _TIMED_OUT)

    def _end(self, answer: bytes | None) -> None:
        if answer is not None:
            self._held.write(answer)
        self._held.close()

    def _offence(self, offence: str, message: str) -> None:
        address = self.client[0] if self.client else "unknown"
        self.limits.offenders.report(offence, address, self.loop.time(), f"{message} ({address})")

    def _refuse_over_capacity(self, transport: asyncio.Transport) -> None:
        self.transport = self._held  # uvicorn's connection_lost closes it
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) else "unknown"
        self.limits.offenders.report(
            "connection_cap",
            address,
            self.loop.time(),
            f"connection cap of {self.limits.max_connections} reached: refused a connection "
            f"with 503 ({address})",
        )
        self._held.write(_AT_CAPACITY)
        self._held.close()


class _Reopen:
    """Gives a connection back to HTTP: a fresh protocol like the one that detached its stream."""

    __slots__ = ("_app_state", "_cls", "_config", "_loop", "_state")

    def __init__(self, protocol: CoalescingHttpToolsProtocol) -> None:
        self._cls = type(protocol)
        self._config = protocol.config
        self._state = protocol.server_state
        self._app_state = protocol.app_state
        self._loop = protocol.loop

    def __call__(self, transport: asyncio.Transport, buffered: bytes, *, closing: bool) -> None:
        protocol = self._cls(
            config=self._config, server_state=self._state, app_state=self._app_state, _loop=self._loop
        )
        transport.set_protocol(protocol)
        protocol.resume_after_stream(transport, buffered, closing=closing)


def limited(limits: ConnectionLimits) -> type[CoalescingHttpToolsProtocol]:
    """The protocol class of one listener, enforcing ``limits`` (shared by its connections)."""
    return type("LimitedHttpToolsProtocol", (CoalescingHttpToolsProtocol,), {"limits": limits})
