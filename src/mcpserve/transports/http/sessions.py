"""The 2025-era session service: POST, GET and DELETE of sessions kept as data.

A session is a :class:`~mcpserve.protocol.session.LegacySession` stored as JSON in a
:class:`~mcpserve.store.base.SessionStore`; its SSE events are resumable from an
:class:`~mcpserve.store.base.EventStore`. What cannot be data (calls to cancel, requests
waiting for the client's answer, streams still being written, the one GET stream) lives behind
:class:`~mcpserve.transports.http.tables.SessionTables`.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from typing import Any

import anyio

from mcpserve.auth.gate import AuthGate
from mcpserve.errors import (
    InvalidRequest,
    MethodNotAllowed,
    NotAcceptable,
    NotFound,
    RateLimited,
    ServiceUnavailable,
    StreamConflict,
)
from mcpserve.observability.requests import note_call, note_refused_call, note_session
from mcpserve.principal import Principal
from mcpserve.protocol import jsonrpc
from mcpserve.protocol.session import LegacySession
from mcpserve.protocol.versions import LEGACY_VERSIONS
from mcpserve.server import failures
from mcpserve.server.admission import Admission, caller_key
from mcpserve.server.call import Call
from mcpserve.store.base import CreateOutcome, EventStore, SessionStore
from mcpserve.transports.http.calls import CallRunner, cancel_on_disconnect, without_credentials
from mcpserve.transports.http.drain import Drain
from mcpserve.transports.http.hostguard import HostGuard
from mcpserve.transports.http.limits import CallLimits
from mcpserve.transports.http.negotiation import accepts
from mcpserve.transports.http.refusals import forbidden, refuse, refuse_access, refuse_while_draining
from mcpserve.transports.http.standalone import AsgiSink, StandaloneStream, StandaloneStreams, StreamSink
from mcpserve.transports.http.stream import ResponseStream, Send, json_response
from mcpserve.transports.http.tables import SessionTables
from mcpserve.transports.http.watch import StreamWatch
from mcpserve.types import JSONObject

__all__ = ["Detach", "SessionService"]

# Moves an opened standalone stream off its request (see detached.py); None when it cannot.
Detach = Callable[[], StreamSink | None]

SESSION_HEADER = b"mcp-session-id"
# The load at a request's start restarts a session's idle clock; a call running longer than this
# restarts it again when it ends, so the idle time counts from the end of long work.
_LONG_CALL = 1.0
_SAVE_ATTEMPTS = 8
# A caller at its cap of live sessions frees a slot with DELETE, or when one expires.
_OWNER_RETRY = 5
_NOBODY_WAITS = (
    "No request is waiting for this response: it was answered or ended, or the server that asked stopped"
)


# A session as read, with the version a compare-and-set write must name. A plain pair, not a
# NamedTuple: building one of those runs a Python-level __new__, and every request builds one.
Loaded = tuple[LegacySession, int]


class SessionService:
    """Serves every request that belongs to a 2025-era session, and ``initialize``."""

    def __init__(
        self,
        runner: CallRunner,
        *,
        sessions: SessionStore,
        events: EventStore,
        tables: SessionTables,
        drain: Drain,
        guard: HostGuard,
        auth: AuthGate | None,
        limits: CallLimits | None,
        keepalive: float,
        stream_check: float = 5.0,
        shared_state: bool = False,
    ) -> None:
        self._runner = runner
        self.dispatcher = runner.dispatcher
        self.sessions = sessions
        self.events = events
        self.tables = tables
        self._drain = drain
        self._guard = guard
        self._auth = auth
        self._limits = limits
        self._keepalive = keepalive
        self.stream_watch = StreamWatch(sessions, stream_check, self.dispatcher.closing)
        server = self.dispatcher.server
        self.standalone = StandaloneStreams(
            lambda: server.bus,
            sessions=sessions,
            events=events,
            get_streams=tables.get_streams,
            watch=self.stream_watch,
            closing=self.dispatcher.closing,
            keepalive=keepalive,
        )
        # While draining, a new session or GET stream is refused only if it would die with this
        # replica: with shared state, another replica serves its follow-ups and resumptions.
        self._shared_state = shared_state

    # -- POST ---------------------------------------------------------------------------------------
    async def post(
        self,
        headers: dict[str, str],
        message: jsonrpc.Message,
        receive: Any,
        send: Send,
        principal: Principal | None,
        peer: str | None,
    ) -> None:
        version = headers.get("mcp-protocol-version")
        if (
            version is not None
            and version.strip() not in LEGACY_VERSIONS
            and not (isinstance(message, jsonrpc.Request) and message.method == "initialize")
        ):
            error = InvalidRequest(f"Unsupported MCP-Protocol-Version: {version.strip()!r}")
            await refuse(send, error, getattr(message, "id", None))
            return
        if isinstance(message, jsonrpc.Request) and message.method == "initialize":
            await self._initialize(message, send, principal, self._owner(principal, headers, peer))
            return
        session_id = headers.get("mcp-session-id", "").strip()
        if not session_id:
            error = InvalidRequest("Bad Request: missing Mcp-Session-Id header (send initialize first)")
            await refuse(send, error, getattr(message, "id", None))
            return
        record = note_session(session_id)
        session = await self._load(session_id, principal)
        if session is None:
            error = NotFound("Session not found: initialize a new session")
            await refuse(send, error, getattr(message, "id", None))
            return
        if record is not None:  # it exists, so this server made the id: the log line need not mask it
            record.session_issued = True
        if isinstance(message, jsonrpc.Response):
            if await self.tables.waiting.answer(session_id, message.id, message.result, message.error):
                await json_response(send, 202, None, [])
            else:  # refused, not dropped: the client learns its answer reached no one
                await refuse(send, NotFound(_NOBODY_WAITS))  # id null: it answers no request of the client
        elif isinstance(message, jsonrpc.Notification):
            await self._notification(session_id, session, message)
            await json_response(send, 202, None, [])
        elif self._limits is not None and message.method == "tools/call":
            name = message.params.get("name")
            admission = await self._limits.admit(
                name if isinstance(name, str) else None, principal, headers, peer
            )
            try:
                await self._request(
                    session_id, session, message, headers, receive, send, principal, admission
                )
            finally:
                admission.release()
        else:
            await self._request(session_id, session, message, headers, receive, send, principal)

    async def _load(self, session_id: str, principal: Principal | None) -> Loaded | None:
        """The session, if it exists and belongs to this principal: another principal's session
        is answered exactly like one that does not exist. Loading restarts its idle clock."""
        stored = await self.sessions.load(session_id)
        if stored is None:
            return None
        session = LegacySession.from_json(stored.record)
        owner = principal.key if principal is not None else None  # as initialize recorded it
        return (session, stored.version) if session.principal == owner else None

    async def _save(self, session_id: str, loaded: Loaded, after: LegacySession) -> None:
        """Write a transition with compare-and-set. When another request (on any replica) wrote
        first, re-read and apply this transition's changes to what it wrote."""
        before, version = loaded
        for _ in range(_SAVE_ATTEMPTS):
            if await self.sessions.update(session_id, after.to_json(), expected_version=version):
                return
            stored = await self.sessions.load(session_id)
            if stored is None:
                return  # deleted meanwhile: nothing left to change
            current = LegacySession.from_json(stored.record)
            after, before, version = after.rebase(before, current), current, stored.version
        raise ServiceUnavailable("Session is being changed concurrently; retry", retry_after=1)

    def _owner(self, principal: Principal | None, headers: dict[str, str], peer: str | None) -> str:
        """Whose session cap a new session counts against: the caller as the rate limits see it
        (the principal, else the client's address behind any trusted proxy)."""
        return caller_key(principal, self._guard.client_address(headers.get("x-forwarded-for"), peer))

    async def _initialize(
        self, message: jsonrpc.Request, send: Send, principal: Principal | None, owner: str
    ) -> None:
        if self._drain.draining and not self._shared_state:
            await refuse_while_draining(send, message.id)
            return
        call = Call.legacy(message, None, principal=principal)
        started = time.perf_counter()
        response = await self.dispatcher.handle(call)
        note_call(call, response, time.perf_counter() - started)
        if call.session is None:
            await json_response(send, failures.response_status(response, "legacy"), response, [])
            return
        session_id = secrets.token_urlsafe(24)
        created = await self.sessions.create(session_id, call.session.to_json(), owner=owner)
        if created is CreateOutcome.FULL:
            await refuse(
                send, ServiceUnavailable("Server at session capacity; retry later", retry_after=5), message.id
            )
            return
        if created is CreateOutcome.OWNER_FULL:
            limited = RateLimited(
                _OWNER_RETRY,
                "Too many open sessions for this caller; end one with DELETE or retry later",
            )
            await refuse(send, limited, message.id)
            return
        note_session(session_id)
        await json_response(send, 200, response, [(SESSION_HEADER, session_id.encode())])

    async def _notification(self, session_id: str, session: Loaded, note: jsonrpc.Notification) -> None:
        if note.method == "notifications/cancelled":
            target = jsonrpc.as_request_id(note.params.get("requestId"))  # may be any JSON: unhashable
            if target is not None:
                await self.tables.calls.cancel(session_id, target)
        elif note.method == "notifications/initialized" and not session[0].initialized:
            await self._save(session_id, session, session[0].mark_initialized())

    async def _request(
        self,
        session_id: str,
        loaded: Loaded,
        message: jsonrpc.Request,
        headers: dict[str, str],
        receive: Any,
        send: Send,
        principal: Principal | None,
        admission: Admission | None = None,
    ) -> None:
        session = loaded[0]
        call = Call.legacy(message, session, headers=without_credentials(headers), principal=principal)
        if self._auth is not None:  # as ModernPost: no scopes to check without authentication
            denied = forbidden(self._auth, self.dispatcher.server, call)
            if denied is not None:
                await refuse_access(self._auth, send, denied, message.id)
                return
        header = [(SESSION_HEADER, session_id.encode())]
        if admission is not None:
            header += admission.headers()
        stream = ResponseStream(send, header, resumable=(self.events, session_id), keepalive=self._keepalive)
        if admission is not None and admission.error is not None:
            # Refused before it runs: nothing has streamed yet, so this is a plain JSON 429.
            error = admission.error
            name = message.params.get("name")
            note_refused_call(message.method, None, name if isinstance(name, str) else None, "rate_limited")
            await stream.finish(
                failures.error_response(message.id, error, "legacy"), failures.http_status(error, "legacy")
            )
            return
        started = time.monotonic()
        await self._runner.run(call, stream, receive, session_id=session_id)
        if call.session is not session and call.session is not None:
            await self._save(session_id, loaded, call.session)
        elif time.monotonic() - started > _LONG_CALL:
            await self.sessions.touch(session_id)

    # -- GET and DELETE -------------------------------------------------------------------------------
    async def _session_for(
        self, headers: dict[str, str], send: Send, principal: Principal | None
    ) -> tuple[str, Loaded] | None:
        session_id = headers.get("mcp-session-id", "").strip()
        if not session_id:
            await refuse(send, MethodNotAllowed("Method not allowed without a session"))
            return None
        note_session(session_id)
        found = await self._load(session_id, principal)
        if found is None:
            await refuse(send, NotFound("Session not found"))
            return None
        return session_id, found

    async def get(
        self,
        headers: dict[str, str],
        receive: Any,
        send: Send,
        principal: Principal | None,
        detach: Detach | None = None,
    ) -> None:
        """A GET: resume a stream (``Last-Event-ID``) or open the session's standalone stream.

        ``detach`` (from the endpoint, when the ASGI server offers it) moves an opened standalone
        stream off this request's task; None keeps it on the task (any ASGI server).
        """
        if not accepts(headers.get("accept", ""), "text/event-stream"):
            await refuse(send, NotAcceptable("Accept must list text/event-stream"))
            return
        found = await self._session_for(headers, send, principal)
        if found is None:
            return
        session_id, _ = found
        last_event_id = headers.get("last-event-id")
        if last_event_id is not None:
            await self._continue(session_id, last_event_id, receive, send)
        elif self._drain.draining and not self._shared_state:
            await refuse_while_draining(send, None)
        elif not await self.tables.get_streams.claim(session_id):
            await refuse(send, StreamConflict("A GET stream is already open"))
        else:
            await self._standalone(session_id, send, receive, detach)

    def _stream(self, send: Send, session_id: str) -> ResponseStream:
        return ResponseStream(
            send,
            [(SESSION_HEADER, session_id.encode())],
            resumable=(self.events, session_id),
            keepalive=self._keepalive,
        )

    async def _continue(self, session_id: str, last_event_id: str, receive: Any, send: Send) -> None:
        """A resumption: a stream still being written continues live, else stored events replay."""
        replay = await self.events.replay(session_id, last_event_id)
        if replay is None:
            await refuse(send, NotFound("Unknown Last-Event-ID"))
            return
        live = self.tables.live.get(session_id, replay[0])
        if live is not None and await self._resume(live, session_id, last_event_id, receive, send):
            return
        replay = await self.events.replay(session_id, last_event_id) or replay
        stream = self._stream(send, session_id)
        stream.stream_id = replay[0]
        await stream.replay(replay[1])

    async def _resume(
        self, live: ResponseStream, session_id: str, last_event_id: str, receive: Any, send: Send
    ) -> bool:
        """Carry a still-running POST stream on this GET until it ends; False if it just ended."""

        async def missed() -> list[tuple[str, JSONObject]]:
            replay = await self.events.replay(session_id, last_event_id)
            return replay[1] if replay is not None else []

        released = await live.resume(send, [(SESSION_HEADER, session_id.encode())], missed)
        if released is None:
            return False
        async with anyio.create_task_group() as group:

            async def until_released() -> None:
                await released.wait()
                group.cancel_scope.cancel()

            group.start_soon(until_released)
            await cancel_on_disconnect(receive, group.cancel_scope)
        await live.drop(send)
        return True

    async def _standalone(self, session_id: str, send: Send, receive: Any, detach: Detach | None) -> None:
        """Relay notifications until the client leaves, the session is gone or the server closes.

        Once its priming event is out, the stream is detached from this request when the server
        allows (then it costs no task at all), else this task sends its writes and one more hears
        the client leave. Either way the replica's task relays and keeps it alive, and the stream
        watch ends it (see standalone.py).
        """
        streams = self.standalone
        stream: StandaloneStream | None = None
        generic: AsgiSink | None = None
        try:
            await streams.subscribed()  # before the priming event: nothing published after it is missed
        except BaseException:
            await self.tables.get_streams.release(session_id)
            raise
        try:
            opened = self._stream(send, session_id)
            await opened.open_sse(keepalives=False)
            sink = detach() if detach is not None else None
            if sink is None:
                sink = generic = AsgiSink()
            stream = StandaloneStream(streams, session_id, opened.stream_id, sink)
            streams.add(stream)
            if generic is not None:
                await generic.run(send, receive)
        finally:
            if stream is None:  # failed before it opened: nothing else holds the claim
                streams.abandon()
                await self.tables.get_streams.release(session_id)
            elif generic is not None:
                stream.lost()  # the request ends here, whatever ended it
                if stream.closed is not None:  # not cancelled with this task: it releases the claim
                    await asyncio.shield(stream.closed)

    async def delete(self, headers: dict[str, str], send: Send, principal: Principal | None) -> None:
        found = await self._session_for(headers, send, principal)
        if found is None:
            return
        session_id, _ = found
        await self.sessions.delete(session_id)
        await self.events.forget(session_id)
        await json_response(send, 200, None, [])
