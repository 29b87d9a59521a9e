"""The MCP endpoint (``/mcp``) as a raw ASGI app: a thin adapter in front of both eras.

It answers every request (no exception escapes), checks Host/Origin and authentication, reads
and decodes a POST body, admits declared 2026-07-28 tool calls under the rate limits before the
body is read, and hands the message to its era: :class:`~.modern.ModernPost` (stateless) or
:class:`~.sessions.SessionService` (2025-era sessions, GET and DELETE). Both run calls through
one :class:`~.calls.CallRunner`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from functools import partial
from typing import Any

from mcpserve.auth.gate import AuthGate
from mcpserve.errors import InvalidRequest, MethodNotAllowed, PayloadTooLarge, ProtocolError
from mcpserve.observability.requests import (
    RequestObserver,
    RequestRecord,
    current_request,
    note_message,
    note_principal,
    note_refused_call,
    request_id_for,
)
from mcpserve.principal import Principal
from mcpserve.protocol import jsonrpc
from mcpserve.server import failures
from mcpserve.server.admission import Admission, CallGate
from mcpserve.server.dispatch import Dispatcher
from mcpserve.store.base import EventStore, SessionStore
from mcpserve.transports.http.body import read_body, whole_body
from mcpserve.transports.http.calls import CallRunner
from mcpserve.transports.http.detached import DETACH_EXTENSION
from mcpserve.transports.http.drain import Drain
from mcpserve.transports.http.exchange import Exchange
from mcpserve.transports.http.headertext import decoded, repeated_single
from mcpserve.transports.http.hostguard import HostGuard
from mcpserve.transports.http.limits import CallLimits, declared_tool_call
from mcpserve.transports.http.modern import ModernPost
from mcpserve.transports.http.negotiation import is_modern
from mcpserve.transports.http.refusals import (
    GUARD_REFUSALS,
    cut_off_error,
    refuse,
    refuse_access,
    unacceptable,
)
from mcpserve.transports.http.sessions import Detach, SessionService
from mcpserve.transports.http.standalone import StreamSink
from mcpserve.transports.http.stream import Send, json_response
from mcpserve.transports.http.tables import SessionTables

__all__ = ["McpEndpoint", "EndpointOptions"]

# On a refusal that leaves a body unread: the connection cannot carry another request.
_CLOSE = [(b"connection", b"close")]


@dataclass(slots=True, frozen=True)
class EndpointOptions:
    max_body_bytes: int = 4 * 1024 * 1024
    keepalive: float = 15.0
    # Seconds between checks that the sessions of open GET streams still exist.
    session_sweep_interval: float = 5.0
    # Sessions live in a store every replica shares: a draining replica can still create them.
    shared_state: bool = False


class McpEndpoint:
    """ASGI app serving the MCP endpoint."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        *,
        sessions: SessionStore,
        events: EventStore,
        guard: HostGuard,
        options: EndpointOptions | None = None,
        auth: AuthGate | None = None,
        limits: CallGate | None = None,
        drain: Drain | None = None,
        observer: RequestObserver | None = None,
        tables: SessionTables | None = None,
    ) -> None:
        self.dispatcher = dispatcher
        self.observer = observer
        self.auth = auth
        self.limits = limits
        self.sessions = sessions
        self.events = events
        self.guard = guard
        self.options = options or EndpointOptions()
        self.drain = drain or Drain()
        self._limit_digits = len(str(self.options.max_body_bytes))
        tables = tables or SessionTables()
        self._call_limits = CallLimits(limits, guard) if limits is not None else None
        self.runner = CallRunner(dispatcher, self.drain, tables)
        keepalive = self.options.keepalive
        # Bound once: the hot path calls these without a lookup through another object.
        self._post_modern = ModernPost(self.runner, auth, keepalive).post
        self.legacy = SessionService(
            self.runner,
            sessions=sessions,
            events=events,
            tables=tables,
            drain=self.drain,
            guard=guard,
            auth=auth,
            limits=self._call_limits,
            keepalive=keepalive,
            stream_check=self.options.session_sweep_interval,
            shared_state=self.options.shared_state,
        )

    @property
    def draining(self) -> bool:
        """Shutdown has begun: with state in this process only, new sessions and GET streams get
        503 (everything else is still served: the closed listener and ``Connection: close`` send
        the next requests elsewhere)."""
        return self.drain.draining

    def cut_off(self) -> int:
        """Stop every call still running (the drain deadline passed); each answers -31000.

        Returns how many were stopped.
        """
        return self.runner.cut_off()

    # -- entry ----------------------------------------------------------------------------------
    async def __call__(
        self,
        scope: dict[str, Any],
        receive: Any,
        send: Send,
        extra_headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        """Serve one request; no exception escapes to the ASGI server (the failsafe).

        ``extra_headers`` go on every answer (CORS). The request is counted in flight for the
        drain and, once answered, reported to the observer as metrics and one log line.
        """
        headers = decoded(scope["headers"])
        record = RequestRecord(
            request_id_for(headers.get("x-request-id")), time.perf_counter(), scope["method"]
        )
        extra = [*(extra_headers or ()), (b"x-request-id", record.request_id.encode())]
        exchange = Exchange(send, extra, record, self.observer)
        token = current_request.set(record)
        self.drain.enter()
        try:
            await self._serve(scope, headers, receive, exchange)
        except asyncio.CancelledError:
            # The ASGI server cancels what still runs after its own shutdown grace; answer instead
            # of letting the cancellation reach it (a bare 500 and a traceback in its log).
            task = asyncio.current_task()
            if not self.draining or task is None:
                raise
            task.uncancel()
            await self._fail(exchange, cut_off_error())
        except ProtocolError as exc:  # a refusal from a lower layer (e.g. a store at capacity)
            if not exchange.started:
                await refuse(exchange, exc)
        except Exception:
            await self._fail(exchange, failures.unexpected(f"HTTP {scope.get('method')} endpoint"))
        finally:
            current_request.reset(token)
            if not exchange.detached:  # else it ends with its stream (_over, from _detacher)
                self.drain.leave()
                if record.sse:  # a stream the response did not end (the client left, a failure)
                    exchange.stream_ended()
                if self.observer is not None:
                    self.observer.finish(record)

    def _over(self, exchange: Exchange) -> None:
        """A detached stream's request is over: out of the drain's count, its stream closed, its
        line logged (as the end of __call__ does for every other request)."""
        self.drain.leave()
        exchange.stream_ended()
        if self.observer is not None:
            self.observer.finish(exchange.record)

    def _detacher(self, scope: dict[str, Any], exchange: Exchange) -> Detach | None:
        """How a GET's standalone stream leaves its task, if the ASGI server offers it: the
        request then stays in flight, counted and unlogged, until the stream ends."""
        offered = (scope.get("extensions") or {}).get(DETACH_EXTENSION)
        if offered is None:
            return None
        extension = offered["detach"]

        def detach() -> StreamSink | None:
            stream: StreamSink | None = extension(exchange.server_send, partial(self._over, exchange))
            if stream is not None:
                exchange.detach()
            return stream

        return detach

    @staticmethod
    async def _fail(exchange: Exchange, error: ProtocolError) -> None:
        """Answer ``error`` if nothing was sent yet, else end the response that is under way."""
        if not exchange.started:
            await refuse(exchange, error)
        elif not exchange.ended:
            await exchange({"type": "http.response.body", "body": b"", "more_body": False})

    # Steps with nothing of their own to await are plain functions returning the next step's
    # awaitable: every coroutine level costs a frame per request, and one more resumption for
    # each await below it (a sync tool's result climbs all of them).
    def _serve(
        self, scope: dict[str, Any], headers: dict[str, str], receive: Any, send: Send
    ) -> Awaitable[None]:
        if len(headers) != len(scope["headers"]):  # a name repeats: fine for most, never for some
            repeated = repeated_single(scope["headers"])
            if repeated is not None:
                return refuse(send, InvalidRequest(f"Duplicate {repeated} header"))
        client = scope.get("client")
        peer = client[0] if client else None
        verdict = self.guard.check(
            headers.get("host"), headers.get("origin"), headers.get("x-forwarded-host"), peer
        )
        if verdict.status:
            return refuse(send, GUARD_REFUSALS[verdict.status](verdict.reason))
        if self.auth is not None:
            return self._authenticated(self.auth, scope, headers, receive, send, peer)
        return self._by_method(scope, headers, receive, send, None, peer)

    async def _authenticated(
        self,
        auth: AuthGate,
        scope: dict[str, Any],
        headers: dict[str, str],
        receive: Any,
        send: Send,
        peer: str | None,
    ) -> None:
        # Before the body is read: an unauthenticated caller costs no parsing.
        try:
            principal = await auth.authenticate(headers, scope.get("query_string", b""))
        except ProtocolError as exc:
            await refuse_access(auth, send, exc)
            return
        if principal is not None:
            note_principal(principal)
        await self._by_method(scope, headers, receive, send, principal, peer)

    def _by_method(
        self,
        scope: dict[str, Any],
        headers: dict[str, str],
        receive: Any,
        send: Send,
        principal: Principal | None,
        peer: str | None,
    ) -> Awaitable[None]:
        method = scope["method"]
        if method == "POST":
            return self._post(headers, receive, send, principal, peer)
        if method == "GET":
            return self.legacy.get(headers, receive, send, principal, self._detacher(scope, send))
        if method == "DELETE":
            return self.legacy.delete(headers, send, principal)
        error = MethodNotAllowed("Method not allowed")
        allow = [(b"allow", b"GET, POST, DELETE")]
        return json_response(send, 405, failures.error_response(None, error, None), allow)

    # -- POST -------------------------------------------------------------------------------------
    async def _post(
        self, headers: dict[str, str], receive: Any, send: Send, principal: Principal | None, peer: str | None
    ) -> None:
        limit = self.options.max_body_bytes
        problem = unacceptable(headers, limit, self._limit_digits)
        if problem is not None:
            # A body over the limit is refused before a byte of it is read; the connection ends.
            await refuse(send, problem, headers=_CLOSE if isinstance(problem, PayloadTooLarge) else None)
            return
        admission: Admission | None = None
        if self._call_limits is not None:
            declared, tool = declared_tool_call(headers)
            if declared:
                admission = await self._call_limits.admit(tool, principal, headers, peer)
                if admission.error is not None:
                    note_refused_call("tools/call", "modern", tool, "rate_limited")
                    await CallLimits.refuse_unread(admission, receive, send, self.options.max_body_bytes)
                    return
        try:
            first = await receive()
            try:
                body = whole_body(first, limit)
                if body is None:
                    body = await read_body(receive, limit, first)
            except PayloadTooLarge as exc:  # the rest of it stays unread: the connection ends
                await refuse(send, exc, headers=_CLOSE)
                return
            if body is None:
                return
            raw: Any = None
            try:
                raw = jsonrpc.decode(body)
                message = jsonrpc.parse_message(raw)
            except ProtocolError as exc:
                await refuse(send, exc, jsonrpc.request_id_of(raw))
                return
            params = message.params if not isinstance(message, jsonrpc.Response) else {}
            method = message.method if not isinstance(message, jsonrpc.Response) else None
            modern = is_modern(headers, method, params)
            note_message(method or "response", "modern" if modern else "legacy")
            if modern:
                limits = admission.headers() if admission is not None else []
                await self._post_modern(headers, message, receive, send, principal, limits)
            else:
                await self.legacy.post(headers, message, receive, send, principal, peer)
        finally:
            if admission is not None:
                admission.release()
