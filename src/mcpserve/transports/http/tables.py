"""What the 2025-era session service keeps about work in progress, behind small interfaces.

Sessions themselves are data in a :class:`~mcpserve.store.base.SessionStore`. What is here
cannot be data: a call that can be cancelled, a request waiting for the client's answer, a
stream that is still being written, the one GET stream a session may hold. The endpoint talks
only to these protocols; the ``Local`` classes keep them in this process (one replica). Versions
that reach other replicas through the store's message bus implement the same protocols.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from mcpserve.server.pending import PendingRequests
from mcpserve.transports.http.stream import ResponseStream
from mcpserve.types import JSONObject, RequestId

__all__ = [
    "Cancellable",
    "CallsInFlight",
    "GetStreams",
    "LiveStreams",
    "LocalCallsInFlight",
    "LocalGetStreams",
    "LocalLiveStreams",
    "LocalWaitingRequests",
    "SessionTables",
    "WaitingRequests",
]


class Cancellable(Protocol):
    def cancel(self, *, shutdown: bool = False) -> bool: ...


class CallsInFlight(Protocol):
    """2025-era calls still running, so ``notifications/cancelled`` can reach them."""

    def add(self, session_id: str, request_id: RequestId, call: Cancellable) -> None: ...

    def discard(self, session_id: str, request_id: RequestId) -> None: ...

    async def cancel(self, session_id: str, request_id: RequestId) -> None:
        """Cancel that call if it still runs; nothing if it already ended."""
        ...


class WaitingRequests(Protocol):
    """Server→client requests (elicitation, sampling, roots) waiting for the client's answer."""

    async def wait(
        self, session_id: str, request_id: str, method: str, send: Callable[[], Awaitable[None]]
    ) -> JSONObject:
        """Register the request, run ``send()`` (which delivers it), then await the answer.

        Raises ToolError when the client refuses or the connection closes first.
        """
        ...

    async def answer(
        self, session_id: str, request_id: RequestId, result: JSONObject | None, error: JSONObject | None
    ) -> bool:
        """Deliver the client's answer; False if no call waits for it."""
        ...


class LiveStreams(Protocol):
    """2025-era POST streams still being written: a GET with ``Last-Event-ID`` continues one of
    these live instead of only replaying what is stored."""

    def add(self, session_id: str, stream: ResponseStream) -> None: ...

    def discard(self, session_id: str, stream: ResponseStream) -> None: ...

    def get(self, session_id: str, stream_id: str) -> ResponseStream | None: ...


class GetStreams(Protocol):
    """At most one standalone GET stream per session."""

    async def claim(self, session_id: str) -> bool:
        """Take the session's GET stream; False if one is already open."""
        ...

    async def release(self, session_id: str) -> None: ...


class LocalCallsInFlight:
    __slots__ = ("_calls",)

    def __init__(self) -> None:
        self._calls: dict[tuple[str, RequestId], Cancellable] = {}

    def add(self, session_id: str, request_id: RequestId, call: Cancellable) -> None:
        self._calls[(session_id, request_id)] = call

    def discard(self, session_id: str, request_id: RequestId) -> None:
        self._calls.pop((session_id, request_id), None)

    async def cancel(self, session_id: str, request_id: RequestId) -> None:
        call = self._calls.get((session_id, request_id))
        if call is not None:
            call.cancel()


class LocalWaitingRequests:
    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending = PendingRequests()

    async def wait(
        self, session_id: str, request_id: str, method: str, send: Callable[[], Awaitable[None]]
    ) -> JSONObject:
        return await self._pending.wait((session_id, request_id), method, send)

    async def answer(
        self, session_id: str, request_id: RequestId, result: JSONObject | None, error: JSONObject | None
    ) -> bool:
        return self._pending.answer((session_id, request_id), result, error)


class LocalLiveStreams:
    __slots__ = ("_streams",)

    def __init__(self) -> None:
        self._streams: dict[tuple[str, str], ResponseStream] = {}

    def add(self, session_id: str, stream: ResponseStream) -> None:
        self._streams[(session_id, stream.stream_id)] = stream

    def discard(self, session_id: str, stream: ResponseStream) -> None:
        self._streams.pop((session_id, stream.stream_id), None)

    def get(self, session_id: str, stream_id: str) -> ResponseStream | None:
        return self._streams.get((session_id, stream_id))


class LocalGetStreams:
    __slots__ = ("_open",)

    def __init__(self) -> None:
        self._open: set[str] = set()

    async def claim(self, session_id: str) -> bool:
        if session_id in self._open:
            return False
        self._open.add(session_id)
        return True

    async def release(self, session_id: str) -> None:
        self._open.discard(session_id)


@dataclass(slots=True)
class SessionTables:
    """Every table of the session service; by default each is kept in this process."""

    calls: CallsInFlight = field(default_factory=LocalCallsInFlight)
    waiting: WaitingRequests = field(default_factory=LocalWaitingRequests)
    live: LiveStreams = field(default_factory=LocalLiveStreams)
    get_streams: GetStreams = field(default_factory=LocalGetStreams)
