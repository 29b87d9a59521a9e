"""Running a call in the dispatcher, for both eras: cancellation, the drain cut-off, the way
back to the client.

A 2026-07-28 call is cancelled when the client closes its response; a 2025-era call by
``notifications/cancelled`` (see :class:`~mcpserve.transports.http.tables.CallsInFlight`) and
its stream may close and be resumed. At the drain deadline every call still running answers
-31000.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

import anyio

from mcpserve.errors import ToolError
from mcpserve.observability.requests import note_call
from mcpserve.protocol import jsonrpc
from mcpserve.server import failures
from mcpserve.server.call import Call
from mcpserve.server.dispatch import Dispatcher
from mcpserve.server.sweeper import Sweeper
from mcpserve.transports.http.drain import Drain
from mcpserve.transports.http.refusals import cut_off_error
from mcpserve.transports.http.stream import ResponseStream
from mcpserve.transports.http.tables import SessionTables
from mcpserve.types import JSONObject

__all__ = ["CallRunner", "RunningCall", "cancel_on_disconnect", "without_credentials"]


def without_credentials(headers: dict[str, str]) -> dict[str, str]:
    """Headers as tool code sees them: the credential stays here, never reaching upstream calls."""
    if "authorization" not in headers:
        return headers
    return {name: value for name, value in headers.items() if name != "authorization"}


class RunningCall:
    """One call running in the dispatcher: how it is stopped, and its way back to the client.

    It cancels the task running the request once, and only while it is still running.
    ``shutdown`` tells a cut-off at the drain deadline (answered with -31000) from a client's
    cancellation (answered with nothing). ``receive`` is set when closing the response cancels
    the request (2026-07-28); ``watcher`` is the task watching for that, once there is one.

    It is also the call's outbound: events go on the request's own response stream. One object
    for both, as both live exactly as long as the call. A 2025-era stream is listed among its
    session's live streams (``listed``) just before its first event: only then can a GET with
    ``Last-Event-ID`` name it, and a call answered with plain JSON, the usual one, is never listed.
    """

    __slots__ = (
        "_session_id",
        "_stream",
        "_tables",
        "done",
        "listed",
        "receive",
        "requested",
        "shutdown",
        "task",
        "watcher",
    )

    def __init__(
        self,
        tables: SessionTables,
        task: asyncio.Task[Any],
        stream: ResponseStream,
        session_id: str | None,
        receive: Any,
    ) -> None:
        self._tables = tables
        self.task = task
        self._stream = stream
        self._session_id = session_id
        self.receive = receive
        self.watcher: asyncio.Task[None] | None = None
        self.requested = False
        self.shutdown = False
        self.done = False
        self.listed = False

    def cancel(self, *, shutdown: bool = False) -> bool:
        """Request the cancellation; False if the request already ended or was cancelled."""
        if self.done or self.requested:
            return False
        self.requested = True
        self.shutdown = shutdown
        self.task.cancel()
        return True

    def _streaming(self) -> ResponseStream:
        """The stream, about to carry an event: from now on a resumption may name it."""
        if not self.listed and self._session_id is not None:
            self.listed = True
            self._tables.live.add(self._session_id, self._stream)
        return self._stream

    def unlist(self) -> None:
        if self._session_id is not None:
            self._tables.live.discard(self._session_id, self._stream)

    async def notify(self, method: str, params: JSONObject) -> None:
        await self._streaming().emit(jsonrpc.notification(method, params))

    async def request(self, method: str, params: JSONObject) -> JSONObject:
        """Send a server→client request on this call's stream and wait for the client's answer."""
        if self._session_id is None:
            raise ToolError("2026-07-28 requests cannot carry server-to-client requests")
        request_id = f"mcpserve-{secrets.token_hex(6)}"
        stream = self._streaming()
        return await self._tables.waiting.wait(
            self._session_id,
            request_id,
            method,
            lambda: stream.emit(jsonrpc.request(request_id, method, params)),
        )

    async def close_stream(self) -> None:
        # 2026-07-28: closing a response stream means cancellation and nothing is resumable.
        if self._session_id is not None:
            await self._streaming().detach()


class CallRunner:
    """Runs calls of both eras and keeps every one still running, for the drain deadline."""

    __slots__ = ("_calls", "_disconnect_sweeper", "_drain", "_running", "_tables", "dispatcher")

    def __init__(self, dispatcher: Dispatcher, drain: Drain, tables: SessionTables) -> None:
        self.dispatcher = dispatcher
        self._drain = drain
        self._tables = tables
        self._calls = tables.calls
        # Every call running in the dispatcher, so the drain deadline can stop each with an answer.
        self._running: set[RunningCall] = set()
        self._disconnect_sweeper = Sweeper(self._watch_disconnects)

    def cut_off(self) -> int:
        """Stop every call still running (the drain deadline passed); each answers -31000.

        Returns how many were stopped.
        """
        return sum(cancel.cancel(shutdown=True) for cancel in list(self._running))

    async def run(
        self,
        call: Call,
        stream: ResponseStream,
        receive: Any,
        *,
        session_id: str | None = None,
    ) -> JSONObject | None:
        """Run ``call`` and answer on ``stream``. Without a session (2026-07-28) closing the
        response stream cancels the call; a 2025-era stream may close and be resumed."""
        task = asyncio.current_task()
        assert task is not None
        running = RunningCall(self._tables, task, stream, session_id, receive if session_id is None else None)
        call.task = task
        call.outbound = running
        if session_id is None:
            self._disconnect_sweeper.ensure(task.get_loop())
        else:
            self._calls.add(session_id, call.id, running)
        self._running.add(running)
        response: JSONObject | None = None
        extra: list[tuple[bytes, bytes]] = []
        started = time.perf_counter()
        try:
            try:
                response = await self.dispatcher.handle(call)
            except asyncio.CancelledError:
                # Not requested by us: while draining, the ASGI server stopping what still runs.
                shutdown = running.shutdown or (not running.requested and self._drain.draining)
                if not running.requested and not shutdown:
                    raise
                task.uncancel()
                if shutdown:
                    error = cut_off_error()
                    response = failures.error_response(call.id, error, call.era)
                    extra = failures.response_headers(error)
            finally:
                running.done = True
                self._running.discard(running)
                if running.watcher is not None:
                    running.watcher.cancel()
                if session_id is not None:
                    self._calls.discard(session_id, call.id)
            note_call(call, response, time.perf_counter() - started)
            if response is not None:
                await stream.finish(response, failures.response_status(response, call.era), extra)
            else:
                # Cancelled: end the stream (or, before anything was sent, answer 202) with no result.
                await stream.finish(None, 202)
        finally:
            if running.listed:  # its last event is out, or never will be: nothing to resume live
                running.unlist()
        return response

    async def _watch_disconnects(self, tick: float = 0.1) -> None:
        """Give each 2026-07-28 call still running a tick after it started a watcher task.

        Closing the response stream is cancellation. Most calls finish well within a tick, so
        watching each from its start would cost a task per request on the hot path; one sweeper
        gives every longer call its watcher within ``tick`` seconds instead.
        """
        loop = asyncio.get_running_loop()
        while self._running:
            unwatched = [c for c in self._running if c.receive is not None and c.watcher is None]
            await asyncio.sleep(tick)
            for cancel in unwatched:
                if not cancel.done:  # still running a whole tick later: watch it
                    cancel.watcher = loop.create_task(cancel_on_disconnect(cancel.receive, cancel))


async def cancel_on_disconnect(receive: Any, scope: anyio.CancelScope | RunningCall) -> None:
    """Cancel ``scope`` once the client closes the response."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            scope.cancel()
            return
