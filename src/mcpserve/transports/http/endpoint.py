"""The MCP endpoint (``/mcp``) as a raw ASGI app: POST, GET and DELETE for both eras.

2026-07-28 requests are stateless: validated per request, answered on their own response, and
cancelled when the client closes it. 2025-era requests belong to a session kept as data in a
:class:`~mcpserve.store.base.SessionStore`; their SSE streams are resumable from an
:class:`~mcpserve.store.base.EventStore`.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

import anyio

from mcpserve.auth.gate import AuthGate
from mcpserve.errors import (
    Forbidden,
    HeaderMismatch,
    InvalidParams,
    InvalidRequest,
    MethodNotAllowed,
    MisdirectedRequest,
    NotAcceptable,
    NotFound,
    OriginForbidden,
    PayloadTooLarge,
    ProtocolError,
    ServiceUnavailable,
    StreamConflict,
    ToolError,
    Unauthorized,
    UnsupportedMediaType,
)
from mcpserve.observability.requests import (
    RequestObserver,
    RequestRecord,
    current_request,
    note_auth_failure,
    note_call,
    note_message,
    note_principal,
    note_refused_call,
    note_session,
    request_id_for,
)
from mcpserve.principal import Principal
from mcpserve.protocol import jsonrpc
from mcpserve.protocol.envelope import CLIENT_CAPABILITIES_KEY, PROTOCOL_VERSION_KEY, read_request_meta
from mcpserve.protocol.session import LegacySession
from mcpserve.protocol.versions import LEGACY_VERSIONS, MODERN, Era
from mcpserve.server import failures
from mcpserve.server.admission import Admission, CallGate, caller_key
from mcpserve.server.call import Call
from mcpserve.server.dispatch import Dispatcher
from mcpserve.server.pending import PendingRequests
from mcpserve.server.sweeper import Sweeper
from mcpserve.store.base import EventStore, SessionStore
from mcpserve.transports.http import sse
from mcpserve.transports.http.drain import Drain
from mcpserve.transports.http.headertext import decoded, repeated_single
from mcpserve.transports.http.hostguard import HostGuard
from mcpserve.transports.http.negotiation import (
    accepts,
    check_modern_headers,
    declares_more_than,
    decode_header_value,
    is_json,
    is_modern,
)
from mcpserve.transports.http.stream import ResponseStream, Send, json_response
from mcpserve.types import JSONObject, RequestId

__all__ = ["McpEndpoint", "EndpointOptions"]

logger = logging.getLogger("mcpserve.http")
_SESSION_HEADER = b"mcp-session-id"
_SSE_CONTENT_TYPE = sse.SSE_HEADERS[0]


@dataclass(slots=True, frozen=True)
class EndpointOptions:
    max_body_bytes: int = 4 * 1024 * 1024
    keepalive: float = 15.0


_GUARD_REFUSALS: dict[int, type[InvalidRequest]] = {421: MisdirectedRequest, 403: OriginForbidden}


async def _refuse(
    send: Send,
    exc: ProtocolError,
    request_id: RequestId | None = None,
    era: Era | None = None,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """Answer a request the endpoint itself turns down (the mapping lives in ``failures``).

    ``headers`` (rate-limit state, an authentication challenge) come on top of the error's own.
    """
    extra = headers or []
    named = {name for name, _ in extra}
    own = [(name, value) for name, value in failures.response_headers(exc) if name not in named]
    await json_response(
        send,
        failures.http_status(exc, era),
        failures.error_response(request_id, exc, era),
        own + extra,
    )


def _cut_off_error() -> ServiceUnavailable:
    # The drain deadline passed while the request ran: its work is abandoned, a retry elsewhere may succeed.
    return ServiceUnavailable(
        "Server shutting down: the request was stopped; retry on another replica", retry_after=2
    )


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"Body larger than {limit} bytes")


async def _refuse_while_draining(send: Send, request_id: RequestId | None) -> None:
    # Shutdown has begun: another replica can take this at once.
    busy = ServiceUnavailable("Server is shutting down; retry on another replica", retry_after=2)
    await _refuse(send, busy, request_id)


class _Exchange:
    """The ASGI ``send`` of one request: it adds the headers every answer carries (CORS, the
    request id), remembers how far the response got, and tells the request's record the status
    and whether the response streams."""

    __slots__ = ("_extra", "_observer", "_send", "ended", "record", "started")

    def __init__(
        self,
        send: Send,
        extra: list[tuple[bytes, bytes]],
        record: RequestRecord,
        observer: RequestObserver | None,
    ) -> None:
        self._send = send
        self._extra = extra
        self.record = record
        self._observer = observer
        self.started = False
        self.ended = False

    def __call__(self, message: dict[str, Any]) -> Awaitable[None]:
        # A plain function returning the server's own send: no coroutine of ours per message.
        if message["type"] == "http.response.start":
            self.started = True
            headers = message["headers"]
            self.record.status = message["status"]
            # Every stream this endpoint opens starts with sse.SSE_HEADERS (ResponseStream): one
            # comparison instead of a search for Content-Type on every JSON answer.
            if headers and headers[0] == _SSE_CONTENT_TYPE and self._observer is not None:
                self.record.sse = True
                self._observer.sse_open += 1
            message["headers"] = headers + self._extra
        elif not message.get("more_body"):
            self.ended = True
            self.stream_ended()
        return self._send(message)  # type: ignore[no-any-return]

    def stream_ended(self) -> None:
        if self.record.sse and self._observer is not None:
            self.record.sse = False
            self._observer.sse_open -= 1


def _declared_tool_call(headers: dict[str, str]) -> tuple[bool, str | None]:
    """Whether a POST's headers announce a 2026-07-28 ``tools/call``, and of which tool.

    Such requests are limited before their body is read; the body is checked against these
    headers later, so a request cannot be counted as one thing and run as another.
    """
    if "mcp-session-id" in headers or headers.get("mcp-protocol-version", "").strip() != MODERN:
        return False, None
    try:
        if decode_header_value(headers.get("mcp-method", "")) != "tools/call":
            return False, None
        name = headers.get("mcp-name")
        return True, decode_header_value(name) if name is not None else None
    except HeaderMismatch:
        return False, None  # refused later with -32020, before anything runs


def _unacceptable(headers: dict[str, str]) -> ProtocolError | None:
    """Why a POST's Accept or Content-Type rules it out, if they do."""
    if not accepts(headers.get("accept", ""), "application/json", "text/event-stream"):
        return NotAcceptable("Not Acceptable: Accept must list application/json and text/event-stream")
    if not is_json(headers.get("content-type", "")):
        return UnsupportedMediaType("Content-Type must be application/json")
    return None


def _without_credentials(headers: dict[str, str]) -> dict[str, str]:
    """Headers as tool code sees them: the credential stays here, never reaching upstream calls."""
    if "authorization" not in headers:
        return headers
    return {name: value for name, value in headers.items() if name != "authorization"}


def _principal_key(principal: Principal | None) -> str | None:
    return principal.key if principal is not None else None


class _RunningCall:
    """One call running in the dispatcher: how it is stopped, and its way back to the client.

    It cancels the task running the request once, and only while it is still running.
    ``shutdown`` tells a cut-off at the drain deadline (answered with -31000) from a client's
    cancellation (answered with nothing). ``receive`` is set when closing the response cancels
    the request (2026-07-28); ``watcher`` is the task watching for that, once there is one.

    It is also the call's outbound: events go on the request's own response stream. One object
    for both, as both live exactly as long as the call.
    """

    __slots__ = (
        "_endpoint",
        "_session_id",
        "_stream",
        "done",
        "receive",
        "requested",
        "shutdown",
        "task",
        "watcher",
    )

    def __init__(
        self,
        endpoint: McpEndpoint,
        task: asyncio.Task[Any],
        stream: ResponseStream,
        session_id: str | None,
        receive: Any,
    ) -> None:
        self._endpoint = endpoint
        self.task = task
        self._stream = stream
        self._session_id = session_id
        self.receive = receive
        self.watcher: asyncio.Task[None] | None = None
        self.requested = False
        self.shutdown = False
        self.done = False

    def cancel(self, *, shutdown: bool = False) -> bool:
        """Request the cancellation; False if the request already ended or was cancelled."""
        if self.done or self.requested:
            return False
        self.requested = True
        self.shutdown = shutdown
        self.task.cancel()
        return True

    async def notify(self, method: str, params: JSONObject) -> None:
        await self._stream.emit(jsonrpc.notification(method, params))

    async def request(self, method: str, params: JSONObject) -> JSONObject:
        if self._session_id is None:
            raise ToolError("2026-07-28 requests cannot carry server-to-client requests")
        return await self._endpoint.ask(self._session_id, self._stream, method, params)

    async def close_stream(self) -> None:
        # 2026-07-28: closing a response stream means cancellation and nothing is resumable.
        if self._session_id is not None:
            await self._stream.detach()


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
    ) -> None:
        self.dispatcher = dispatcher
        self.observer = observer
        self.auth = auth
        self.limits = limits
        self.sessions = sessions
        self.events = events
        self.guard = guard
        self.options = options or EndpointOptions()
        self._pending = PendingRequests()
        self._inflight: dict[tuple[str, RequestId], _RunningCall] = {}
        # Every call running in the dispatcher, so the drain deadline can stop each with an answer.
        self._running: set[_RunningCall] = set()
        self._disconnect_sweeper = Sweeper(self._watch_disconnects)
        # 2025-era POST streams still running, by (session, stream id): a GET with Last-Event-ID
        # continues one of these live instead of only replaying what is stored.
        self._live: dict[tuple[str, str], ResponseStream] = {}
        self._get_streams: set[str] = set()
        self.drain = drain or Drain()

    @property
    def draining(self) -> bool:
        """Shutdown has begun: new sessions and GET streams get 503 (2026-07-28 requests are
        still served: the closed listener and ``Connection: close`` send the next ones elsewhere)."""
        return self.drain.draining

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
        exchange = _Exchange(send, extra, record, self.observer)
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
            await self._fail(exchange, _cut_off_error())
        except ProtocolError as exc:  # a refusal from a lower layer (e.g. a store at capacity)
            if not exchange.started:
                await _refuse(exchange, exc)
        except Exception:
            await self._fail(exchange, failures.unexpected(f"HTTP {scope.get('method')} endpoint"))
        finally:
            self.drain.leave()
            current_request.reset(token)
            exchange.stream_ended()
            if self.observer is not None:
                self.observer.finish(record)

    @staticmethod
    async def _fail(exchange: _Exchange, error: ProtocolError) -> None:
        """Answer ``error`` if nothing was sent yet, else end the response that is under way."""
        if not exchange.started:
            await _refuse(exchange, error)
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
                return _refuse(send, InvalidRequest(f"Duplicate {repeated} header"))
        client = scope.get("client")
        peer = client[0] if client else None
        verdict = self.guard.check(
            headers.get("host"), headers.get("origin"), headers.get("x-forwarded-host"), peer
        )
        if verdict.status:
            return _refuse(send, _GUARD_REFUSALS[verdict.status](verdict.reason))
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
            await self._refuse(send, exc)
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
            caller = ""
            if self.limits is not None:
                caller = caller_key(
                    principal, self.guard.client_address(headers.get("x-forwarded-for"), peer)
                )
            return self._post(headers, receive, send, principal, caller)
        if method == "GET":
            return self._get(headers, receive, send, principal)
        if method == "DELETE":
            return self._delete(headers, send, principal)
        error = MethodNotAllowed("Method not allowed")
        allow = [(b"allow", b"GET, POST, DELETE")]
        return json_response(send, 405, failures.error_response(None, error, None), allow)

    def cut_off(self) -> int:
        """Stop every call still running (the drain deadline passed); each answers -31000.

        Returns how many were stopped.
        """
        return sum(cancel.cancel(shutdown=True) for cancel in list(self._running))

    async def _refuse(self, send: Send, exc: ProtocolError, request_id: RequestId | None = None) -> None:
        """Answer an authentication or authorization failure (or an unreachable issuer)."""
        if self.auth is not None and isinstance(exc, Unauthorized | Forbidden):
            note_auth_failure(exc)
            await _refuse(send, exc, request_id, headers=self.auth.challenge(exc))
        else:
            await _refuse(send, exc, request_id)

    def _forbidden(self, call: Call) -> Forbidden | None:
        """Refuse before the handler runs when the principal lacks the scopes this target needs."""
        if self.auth is None or call.principal is None:
            return None
        try:
            self.auth.authorize(call.principal, self.dispatcher.server.scopes_for(call.method, call.params))
        except Forbidden as exc:
            return exc
        return None

    def _whole_body(self, message: dict[str, Any]) -> bytes | None:
        """The body when the first message carries all of it, else None; PayloadTooLarge past the limit.

        The usual case, answered without a coroutine of its own; :meth:`_read_body` does the rest.
        """
        if message["type"] != "http.request" or message.get("more_body"):
            return None
        body: bytes = message.get("body", b"")
        if len(body) > self.options.max_body_bytes:
            raise _too_large(self.options.max_body_bytes)
        return body

    async def _read_body(self, receive: Any, message: dict[str, Any] | None = None) -> bytes | None:
        """The whole body; None if the client went away; PayloadTooLarge past the size limit.

        ``message`` is the first one, when the caller has received it already. A body in one
        message is :meth:`_whole_body`'s, on the hot path; this is for the rest.
        """
        limit = self.options.max_body_bytes
        chunks: list[bytes] = []
        size = 0
        while True:
            if message is None:
                message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)
            message = None

    # -- POST -------------------------------------------------------------------------------------
    async def _post(
        self, headers: dict[str, str], receive: Any, send: Send, principal: Principal | None, caller: str
    ) -> None:
        unacceptable = _unacceptable(headers)
        if unacceptable is not None:
            await _refuse(send, unacceptable)
            return
        if declares_more_than(headers.get("content-length"), self.options.max_body_bytes):
            # Refused before a byte of it is read; the connection ends, the body unread.
            await _refuse(send, _too_large(self.options.max_body_bytes), headers=[(b"connection", b"close")])
            return
        admission: Admission | None = None
        if self.limits is not None:
            declared, tool = _declared_tool_call(headers)
            if declared:
                admission = await self.limits.admit(caller, tool)
                if admission.error is not None:
                    note_refused_call("tools/call", "modern", tool, "rate_limited")
                    await self._refuse_unread(admission, receive, send)
                    return
        try:
            first = await receive()
            body = self._whole_body(first)
            if body is None:
                body = await self._read_body(receive, first)
            if body is None:
                return
            raw: Any = None
            try:
                raw = jsonrpc.decode(body)
                message = jsonrpc.parse_message(raw)
            except ProtocolError as exc:
                await _refuse(send, exc, jsonrpc.request_id_of(raw))
                return
            params = message.params if not isinstance(message, jsonrpc.Response) else {}
            method = message.method if not isinstance(message, jsonrpc.Response) else None
            modern = is_modern(headers, method, params)
            note_message(method or "response", "modern" if modern else "legacy")
            if modern:
                limits = admission.headers() if admission is not None else []
                await self._post_modern(headers, message, receive, send, principal, limits)
            else:
                await self._post_legacy(headers, message, receive, send, principal, caller)
        finally:
            if admission is not None:
                admission.release()

    async def _refuse_unread(self, admission: Admission, receive: Any, send: Send) -> None:
        """429 for a request limited from its headers; its body is read only to echo its id."""
        assert admission.error is not None
        body = await self._read_body(receive)
        if body is None:
            return
        try:
            request_id = jsonrpc.request_id_of(jsonrpc.decode(body))
        except ProtocolError:
            request_id = None
        await _refuse(send, admission.error, request_id, headers=admission.headers())

    def _post_modern(
        self,
        headers: dict[str, str],
        message: jsonrpc.Message,
        receive: Any,
        send: Send,
        principal: Principal | None,
        limits: list[tuple[bytes, bytes]],
    ) -> Awaitable[Any]:
        if not isinstance(message, jsonrpc.Request):
            # Notifications need no answer; responses have nothing to answer in this era.
            return json_response(send, 202, None, [])
        try:
            call = self._modern_call(headers, message, principal)
        except ProtocolError as exc:
            return _refuse(send, exc, message.id, "modern", limits)
        denied = self._forbidden(call)
        if denied is not None:
            return self._refuse(send, denied, message.id)
        stream = ResponseStream(send, limits, keepalive=self.options.keepalive)
        return self._run(call, stream, receive)

    def _modern_call(
        self, headers: dict[str, str], message: jsonrpc.Request, principal: Principal | None
    ) -> Call:
        params = message.params
        meta = params.get("_meta")
        if (
            not isinstance(meta, dict)
            or PROTOCOL_VERSION_KEY not in meta
            or CLIENT_CAPABILITIES_KEY not in meta
        ):
            read_request_meta(params)  # raises the precise -32602
            raise InvalidParams("Missing params._meta")  # pragma: no cover - read_request_meta raised
        schema = None
        if message.method == "tools/call" and isinstance(params.get("name"), str):
            tool = self.dispatcher.server.registered_tool(params["name"])
            schema = tool.definition["inputSchema"] if tool else None
        check_modern_headers(headers, message.method, params, schema)
        return Call.modern(
            message, read_request_meta(params), headers=_without_credentials(headers), principal=principal
        )

    async def _run(
        self,
        call: Call,
        stream: ResponseStream,
        receive: Any,
        *,
        session_id: str | None = None,
    ) -> JSONObject | None:
        """Run ``call`` and answer on ``stream``. Without a session (2026-07-28) closing the
        response stream cancels the call; a 2025-era stream may close and be resumed."""
        cancel_on_disconnect = session_id is None
        task = asyncio.current_task()
        assert task is not None
        running = _RunningCall(self, task, stream, session_id, receive if cancel_on_disconnect else None)
        call.task = task
        call.outbound = running
        if cancel_on_disconnect:
            self._disconnect_sweeper.ensure(task.get_loop())
        if session_id is not None:
            self._inflight[(session_id, call.id)] = running
        self._running.add(running)
        response: JSONObject | None = None
        extra: list[tuple[bytes, bytes]] = []
        started = time.perf_counter()
        try:
            response = await self.dispatcher.handle(call)
        except asyncio.CancelledError:
            # Not requested by us: while draining, the ASGI server stopping what still runs.
            shutdown = running.shutdown or (not running.requested and self.draining)
            if not running.requested and not shutdown:
                raise
            task.uncancel()
            if shutdown:
                error = _cut_off_error()
                response = failures.error_response(call.id, error, call.era)
                extra = failures.response_headers(error)
        finally:
            running.done = True
            self._running.discard(running)
            if running.watcher is not None:
                running.watcher.cancel()
            if session_id is not None:
                self._inflight.pop((session_id, call.id), None)
        note_call(call, response, time.perf_counter() - started)
        if response is not None:
            await stream.finish(response, failures.response_status(response, call.era), extra)
        else:
            # Cancelled: end the stream (or, before anything was sent, answer 202) with no result.
            await stream.finish(None, 202)
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
                    cancel.watcher = loop.create_task(self._cancel_on_disconnect(cancel.receive, cancel))

    @staticmethod
    async def _cancel_on_disconnect(receive: Any, scope: anyio.CancelScope | _RunningCall) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                scope.cancel()
                return

    # -- 2025 era ----------------------------------------------------------------------------------
    async def _post_legacy(
        self,
        headers: dict[str, str],
        message: jsonrpc.Message,
        receive: Any,
        send: Send,
        principal: Principal | None,
        caller: str,
    ) -> None:
        version = headers.get("mcp-protocol-version")
        if (
            version is not None
            and version.strip() not in LEGACY_VERSIONS
            and not (isinstance(message, jsonrpc.Request) and message.method == "initialize")
        ):
            error = InvalidRequest(f"Unsupported MCP-Protocol-Version: {version.strip()!r}")
            await _refuse(send, error, getattr(message, "id", None))
            return
        if isinstance(message, jsonrpc.Request) and message.method == "initialize":
            await self._initialize(message, send, principal)
            return
        session_id = headers.get("mcp-session-id", "").strip()
        if not session_id:
            error = InvalidRequest("Bad Request: missing Mcp-Session-Id header (send initialize first)")
            await _refuse(send, error, getattr(message, "id", None))
            return
        note_session(session_id)
        session = await self._load_session(session_id, principal)
        if session is None:
            error = NotFound("Session not found: initialize a new session")
            await _refuse(send, error, getattr(message, "id", None))
            return
        if isinstance(message, jsonrpc.Response):
            self._pending.answer((session_id, message.id), message.result, message.error)
            await json_response(send, 202, None, [])
        elif isinstance(message, jsonrpc.Notification):
            await self._legacy_notification(session_id, session, message)
            await json_response(send, 202, None, [])
        elif self.limits is not None and message.method == "tools/call":
            name = message.params.get("name")
            admission = await self.limits.admit(caller, name if isinstance(name, str) else None)
            try:
                await self._legacy_request(
                    session_id, session, message, headers, receive, send, principal, admission
                )
            finally:
                admission.release()
        else:
            await self._legacy_request(session_id, session, message, headers, receive, send, principal)

    async def _load_session(self, session_id: str, principal: Principal | None) -> LegacySession | None:
        """The session, if it exists and belongs to this principal: another principal's session
        is answered exactly like one that does not exist."""
        record = await self.sessions.get(session_id)
        if record is None:
            return None
        session = LegacySession.from_json(record)
        return session if session.principal == _principal_key(principal) else None

    async def _initialize(self, message: jsonrpc.Request, send: Send, principal: Principal | None) -> None:
        if self.draining:
            await _refuse_while_draining(send, message.id)
            return
        call = Call.legacy(message, None, principal=principal)
        started = time.perf_counter()
        response = await self.dispatcher.handle(call)
        note_call(call, response, time.perf_counter() - started)
        if call.session is None:
            await json_response(send, failures.response_status(response, "legacy"), response, [])
            return
        session_id = secrets.token_urlsafe(24)
        if not await self.sessions.create(session_id, call.session.to_json()):
            await _refuse(
                send, ServiceUnavailable("Server at session capacity; retry later", retry_after=5), message.id
            )
            return
        note_session(session_id)
        await json_response(send, 200, response, [(_SESSION_HEADER, session_id.encode())])

    async def _legacy_notification(
        self, session_id: str, session: LegacySession, note: jsonrpc.Notification
    ) -> None:
        if note.method == "notifications/cancelled":
            target = jsonrpc.as_request_id(note.params.get("requestId"))  # may be any JSON: unhashable
            scope = self._inflight.get((session_id, target)) if target is not None else None
            if scope is not None:
                scope.cancel()
        elif note.method == "notifications/initialized":
            await self.sessions.put(session_id, session.mark_initialized().to_json())

    async def _legacy_request(
        self,
        session_id: str,
        session: LegacySession,
        message: jsonrpc.Request,
        headers: dict[str, str],
        receive: Any,
        send: Send,
        principal: Principal | None,
        admission: Admission | None = None,
    ) -> None:
        call = Call.legacy(message, session, headers=_without_credentials(headers), principal=principal)
        denied = self._forbidden(call)
        if denied is not None:
            await self._refuse(send, denied, message.id)
            return
        header = [(_SESSION_HEADER, session_id.encode())]
        if admission is not None:
            header += admission.headers()
        stream = ResponseStream(
            send, header, resumable=(self.events, session_id), keepalive=self.options.keepalive
        )
        if admission is not None and admission.error is not None:
            # Refused before it runs: nothing has streamed yet, so this is a plain JSON 429.
            error = admission.error
            name = message.params.get("name")
            note_refused_call(message.method, None, name if isinstance(name, str) else None, "rate_limited")
            await stream.finish(
                failures.error_response(message.id, error, "legacy"), failures.http_status(error, "legacy")
            )
            await self.sessions.touch(session_id)
            return
        self._live[(session_id, stream.stream_id)] = stream
        try:
            await self._run(call, stream, receive, session_id=session_id)
        finally:
            self._live.pop((session_id, stream.stream_id), None)
        if call.session is not session and call.session is not None:
            await self.sessions.put(session_id, call.session.to_json())
        else:
            await self.sessions.touch(session_id)

    async def ask(
        self, session_id: str, stream: ResponseStream, method: str, params: JSONObject
    ) -> JSONObject:
        """Send a server→client request on this request's stream and wait for the client's answer."""
        request_id = f"mcpserve-{secrets.token_hex(6)}"
        return await self._pending.wait(
            (session_id, request_id), method, lambda: stream.emit(jsonrpc.request(request_id, method, params))
        )

    # -- GET and DELETE -----------------------------------------------------------------------------
    async def _session_for(
        self, headers: dict[str, str], send: Send, principal: Principal | None
    ) -> tuple[str, LegacySession] | None:
        session_id = headers.get("mcp-session-id", "").strip()
        if not session_id:
            await _refuse(send, MethodNotAllowed("Method not allowed without a session"))
            return None
        note_session(session_id)
        session = await self._load_session(session_id, principal)
        if session is None:
            await _refuse(send, NotFound("Session not found"))
            return None
        return session_id, session

    async def _get(
        self, headers: dict[str, str], receive: Any, send: Send, principal: Principal | None
    ) -> None:
        if not accepts(headers.get("accept", ""), "text/event-stream"):
            await _refuse(send, NotAcceptable("Accept must list text/event-stream"))
            return
        found = await self._session_for(headers, send, principal)
        if found is None:
            return
        session_id, _ = found
        last_event_id = headers.get("last-event-id")
        if last_event_id is None and (self.draining or session_id in self._get_streams):
            if self.draining:
                await _refuse_while_draining(send, None)
            else:
                await _refuse(send, StreamConflict("A GET stream is already open"))
            return
        stream = ResponseStream(
            send,
            [(_SESSION_HEADER, session_id.encode())],
            resumable=(self.events, session_id),
            keepalive=self.options.keepalive,
        )
        if last_event_id is not None:
            replay = await self.events.replay(session_id, last_event_id)
            if replay is None:
                await _refuse(send, NotFound("Unknown Last-Event-ID"))
                return
            live = self._live.get((session_id, replay[0]))
            if live is not None and await self._resume(live, session_id, last_event_id, receive, send):
                return
            replay = await self.events.replay(session_id, last_event_id) or replay
            stream.stream_id = replay[0]
            await stream.replay(replay[1])
            return
        self._get_streams.add(session_id)
        try:
            await self._standalone(session_id, stream, receive)
        finally:
            self._get_streams.discard(session_id)

    async def _resume(
        self, live: ResponseStream, session_id: str, last_event_id: str, receive: Any, send: Send
    ) -> bool:
        """Carry a still-running POST stream on this GET until it ends; False if it just ended."""

        async def missed() -> list[tuple[str, JSONObject]]:
            replay = await self.events.replay(session_id, last_event_id)
            return replay[1] if replay is not None else []

        released = await live.resume(send, [(_SESSION_HEADER, session_id.encode())], missed)
        if released is None:
            return False
        async with anyio.create_task_group() as group:

            async def until_released() -> None:
                await released.wait()
                group.cancel_scope.cancel()

            group.start_soon(until_released)
            await self._cancel_on_disconnect(receive, group.cancel_scope)
        await live.drop(send)
        return True

    async def _standalone(self, session_id: str, stream: ResponseStream, receive: Any) -> None:
        async with self.dispatcher.server.bus.subscribe() as events, anyio.create_task_group() as group:
            group.start_soon(self._cancel_on_disconnect, receive, group.cancel_scope)
            await stream.open_sse()

            async def stop_when_closing() -> None:
                await self.dispatcher.closing.wait()
                group.cancel_scope.cancel()

            group.start_soon(stop_when_closing)
            async for event in events:
                record = await self.sessions.get(session_id)
                if record is None:
                    break
                if not LegacySession.from_json(record).wants(event):
                    continue
                await stream.emit(jsonrpc.notification(event["method"], event["params"]))
            group.cancel_scope.cancel()
        if self.dispatcher.closing.is_set():
            await stream.end_for_shutdown()  # with a retry hint: resume on another replica
        else:
            await stream.finish(None, 200)

    async def _delete(self, headers: dict[str, str], send: Send, principal: Principal | None) -> None:
        found = await self._session_for(headers, send, principal)
        if found is None:
            return
        session_id, _ = found
        await self.sessions.delete(session_id)
        await self.events.forget(session_id)
        await json_response(send, 200, None, [])
