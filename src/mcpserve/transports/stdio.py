"""stdio transport: newline-delimited JSON-RPC on stdin/stdout, both eras.

The first accepted message fixes the era for the process: ``initialize`` starts a 2025-era
session, a request with a 2026-07-28 ``_meta`` envelope makes the process stateless. stdout
carries protocol messages only; logs go to stderr. On EOF the server answers every request it
already read, ends listen streams with their result, and returns.
How the bytes are read and written (on the event loop for pipes): ``stdio_streams``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, BinaryIO

import anyio
from anyio.abc import TaskStatus

from mcpserve.errors import InvalidRequest, ProtocolError, ToolError, UnsupportedProtocolVersion
from mcpserve.protocol import jsonrpc
from mcpserve.protocol.envelope import protocol_version_of, read_request_meta
from mcpserve.protocol.session import LegacySession
from mcpserve.protocol.versions import MODERN_VERSIONS, Era
from mcpserve.server import failures
from mcpserve.server.admission import Admission, CallGate, caller_key
from mcpserve.server.call import Call
from mcpserve.server.dispatch import Dispatcher
from mcpserve.server.pending import PendingRequests
from mcpserve.transports.stdio_streams import open_input, open_output
from mcpserve.types import JSONObject, RequestId

__all__ = ["StdioConnection", "read_lines", "serve_stdio"]

logger = logging.getLogger("mcpserve.stdio")
_CHUNK = 65536


async def read_lines(read: Callable[[int], Awaitable[bytes]], max_bytes: int) -> AsyncIterator[bytes | None]:
    """Yield complete lines from ``read`` (``b""`` at the end); ``None`` stands for a line over
    ``max_bytes``, whose bytes are skipped up to its newline."""
    buffer = b""
    discarding = False
    while True:
        chunk = await read(_CHUNK)
        if not chunk:
            if buffer.strip() and not discarding:
                yield buffer
            return
        buffer += chunk
        if b"\n" in chunk:
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                if discarding:
                    discarding = False
                    yield None
                elif len(line) > max_bytes:
                    yield None
                elif line.strip():
                    yield line
        if len(buffer) > max_bytes and not discarding:
            discarding, buffer = True, b""
        elif discarding:
            buffer = b""


class StdioOutbound:
    """What one request sends back: notifications, and (2025 era) server→client requests."""

    def __init__(self, connection: StdioConnection) -> None:
        self._connection = connection

    async def notify(self, method: str, params: JSONObject) -> None:
        await self._connection.write(jsonrpc.notification(method, params))

    async def request(self, method: str, params: JSONObject) -> JSONObject:
        return await self._connection.ask(method, params)


class StdioConnection:
    """One client on a pair of byte streams.

    ``write`` takes one encoded message on the event loop and must not block; ``drain``, when
    given, waits while the client is behind on reading.
    """

    def __init__(
        self,
        dispatcher: Dispatcher,
        write: Callable[[bytes], object],
        *,
        drain: Callable[[], Awaitable[None]] | None = None,
        max_line_bytes: int,
        gate: CallGate | None = None,
    ) -> None:
        self.dispatcher = dispatcher
        self.gate = gate
        self._write = write
        self._drain = drain
        self._max_line_bytes = max_line_bytes
        self.era: Era | None = None
        self.session: LegacySession | None = None
        # Requests running, by id; a client's notifications/cancelled moves one to ``_abandoned``.
        self._inflight: dict[RequestId, asyncio.Task[None]] = {}
        self._running: set[asyncio.Task[None]] = set()
        self._abandoned: set[asyncio.Task[None]] = set()
        self._pending = PendingRequests()
        self._next_id = 0
        self._closed = False

    async def write(self, message: JSONObject) -> None:
        self._write(failures.encode(message) + b"\n")
        if self._drain is not None:
            await self._drain()

    async def ask(self, method: str, params: JSONObject) -> JSONObject:
        """Send a server→client request and wait for its response."""
        if self._closed:
            raise ToolError("The client closed the connection before answering")
        self._next_id += 1
        request_id = f"mcpserve-{self._next_id}"
        return await self._pending.wait(
            request_id, method, lambda: self.write(jsonrpc.request(request_id, method, params))
        )

    async def run(self, lines: AsyncIterator[bytes | None]) -> None:
        async with anyio.create_task_group() as group:
            await group.start(self._forward_changes)  # subscribed before the first line is read
            try:
                async for line in lines:
                    try:
                        await self._receive(line)
                    except Exception:  # a fault of ours must not end the connection
                        error = failures.unexpected("stdio message")
                        await self.write(failures.error_response(None, error, self.era))
                self._close()
                while self._running:  # EOF: every request already read is answered
                    await asyncio.wait(set(self._running))
            finally:
                for task in self._running:  # only when run itself was cancelled
                    task.cancel()
            group.cancel_scope.cancel()

    def _close(self) -> None:
        """EOF: nobody can answer our requests any more, and listen streams should end."""
        self._closed = True
        self._pending.abandon_all()
        self.dispatcher.closing.set()

    async def _receive(self, line: bytes | None) -> None:
        if line is None:
            error = InvalidRequest(f"Message too large: the limit is {self._max_line_bytes} bytes")
            await self.write(failures.error_response(None, error, self.era))
            return
        raw: Any = None
        try:
            raw = jsonrpc.decode(line)
            message = jsonrpc.parse_message(raw)
        except ProtocolError as exc:
            await self.write(failures.error_response(jsonrpc.request_id_of(raw), exc, self.era))
            return
        if isinstance(message, jsonrpc.Response):
            self._pending.answer(message.id, message.result, message.error)
        elif isinstance(message, jsonrpc.Notification):
            self._notification(message)
        else:
            await self._request(message)

    def _notification(self, message: jsonrpc.Notification) -> None:
        if message.method == "notifications/cancelled":
            target = jsonrpc.as_request_id(message.params.get("requestId"))  # may be any JSON: unhashable
            task = self._inflight.pop(target, None) if target is not None else None
            if task is not None:
                self._abandoned.add(task)
                task.cancel()
        elif self.era == "legacy" and message.method == "notifications/initialized" and self.session:
            self.session = self.session.mark_initialized()

    async def _request(self, message: jsonrpc.Request) -> None:
        try:
            call = self._call_for(message)
        except ProtocolError as exc:
            await self.write(failures.error_response(message.id, exc, self.era))
            return
        if message.method == "initialize" or (call.era == "legacy" and message.method == "logging/setLevel"):
            # Session transitions run in order, before any later message is read.
            await self._serve(call)
            return
        # One plain task per request: the client cancels it by id, its deadline is set on it.
        task = asyncio.get_running_loop().create_task(self._serve(call))
        call.task = task
        self._running.add(task)
        self._inflight[call.id] = task
        task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._abandoned.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # Not even its error reply could be written (the client stopped reading, say).
            logger.error("a stdio request ended without a reply", exc_info=task.exception())

    def _call_for(self, message: jsonrpc.Request) -> Call:
        params = message.params
        # Before the era is fixed, initialize starts the 2025 era and a bare ping (allowed before
        # initialize there) is answered as 2025-era; both leave a later choice open for ping.
        handshake = message.method == "initialize" or (
            message.method == "ping" and protocol_version_of(params) is None
        )
        if self.era == "legacy" or (self.era is None and handshake):
            return Call.legacy(message, self.session, outbound=StdioOutbound(self))
        if message.method == "initialize":
            # This process already serves 2026-07-28; a handshake cannot switch it back.
            error = UnsupportedProtocolVersion(params.get("protocolVersion"), list(MODERN_VERSIONS))
            error.message = (
                "This connection serves 2026-07-28 (per-request _meta); initialize is not available"
            )
            raise error
        meta = read_request_meta(params)
        self.era = "modern"
        return Call.modern(message, meta, outbound=StdioOutbound(self))

    async def _admit(self, call: Call) -> Admission | None:
        if self.gate is None or call.method != "tools/call":
            return None
        # One client per process: its principal if it has one, else this connection.
        name = call.params.get("name")
        return await self.gate.admit(
            caller_key(call.principal, "stdio"), name if isinstance(name, str) else None
        )

    async def _serve(self, call: Call) -> None:
        try:
            await self._run(call)
        except asyncio.CancelledError:
            if asyncio.current_task() in self._abandoned:
                return  # cancelled by the client: send nothing more about this request
            raise
        except Exception:  # a fault of ours must not end the connection
            await self.write(failures.error_response(call.id, failures.unexpected(call.method), call.era))
        finally:
            if call.task is not None and self._inflight.get(call.id) is call.task:
                del self._inflight[call.id]

    async def _run(self, call: Call) -> None:
        admission = await self._admit(call)
        if admission is not None and admission.error is not None:
            await self.write(failures.error_response(call.id, admission.error, call.era))
            return
        try:
            response = await self.dispatcher.handle(call)
        finally:
            if admission is not None:
                admission.release()
        if call.era == "legacy" and call.session is not None and call.session is not self.session:
            if call.method == "initialize":
                self.era = "legacy"
            self.session = call.session
        await self.write(response)

    async def _forward_changes(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """2025 era: list changes always, resource updates for subscribed URIs."""
        async with self.dispatcher.server.bus.subscribe() as events:
            task_status.started()
            async for event in events:
                session = self.session
                if self.era != "legacy" or session is None or not session.initialized:
                    continue
                if not session.wants(event):
                    continue
                try:
                    await self.write(jsonrpc.notification(event["method"], event["params"]))
                except ValueError:  # not encodable as JSON: drop this one, keep the connection
                    logger.warning("dropped a %s notification that cannot be encoded", event["method"])


async def serve_stdio(
    dispatcher: Dispatcher,
    stdin: BinaryIO,
    stdout: BinaryIO,
    *,
    max_line_bytes: int,
    gate: CallGate | None = None,
) -> None:
    """Serve one client over ``stdin``/``stdout`` until EOF (every reply written before returning)."""
    async with open_input(stdin) as read, open_output(stdout) as output:
        connection = StdioConnection(
            dispatcher, output.write, drain=output.drain, max_line_bytes=max_line_bytes, gate=gate
        )
        await connection.run(read_lines(read, max_line_bytes))
