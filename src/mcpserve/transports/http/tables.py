"""What the 2025-era session service keeps about work in progress, behind small interfaces.

Sessions themselves are data in a :class:`~mcpserve.store.base.SessionStore`. What is here
cannot be data: a call that can be cancelled, a request waiting for the client's answer, a
stream that is still being written, the one GET stream a session may hold. The endpoint talks
only to these protocols; the ``Local`` classes keep them in this process (one replica). Versions
that reach other replicas through the store's message bus implement the same protocols.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from mcpserve.errors import StoreUnavailable
from mcpserve.server.pending import PendingRequests, outcome
from mcpserve.server.sweeper import Sweeper
from mcpserve.store.base import AddressInUse, MessageBus
from mcpserve.transports.http.stream import ResponseStream
from mcpserve.types import JSONObject, RequestId

logger = logging.getLogger("mcpserve.http")

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
    "SharedCallsInFlight",
    "SharedGetStreams",
    "SharedWaitingRequests",
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


# -- across replicas, through the message bus ----------------------------------------------------------
def _address(kind: str, session_id: str, request_id: RequestId) -> str:
    return f"{kind}/{session_id}/{request_id}"


class SharedWaitingRequests:
    """The waiting call listens on ``answer/<sid>/<request-id>``; the answer POST, on whichever
    replica it lands, delivers there. Nobody listening (the call ended, or its replica died): the
    answer is refused instead of dropped."""

    __slots__ = ("_bus",)

    def __init__(self, bus: MessageBus) -> None:
        self._bus = bus

    async def wait(
        self, session_id: str, request_id: str, method: str, send: Callable[[], Awaitable[None]]
    ) -> JSONObject:
        async with self._bus.listen(_address("answer", session_id, request_id)) as answers:
            await send()
            answer = await anext(answers, None)
        return outcome(method, answer)

    async def answer(
        self, session_id: str, request_id: RequestId, result: JSONObject | None, error: JSONObject | None
    ) -> bool:
        answer = {"result": result, "error": error}
        return await self._bus.deliver(_address("answer", session_id, request_id), answer)


class SharedCallsInFlight:
    """Calls are cancelled here when they run here; otherwise ``notifications/cancelled`` is
    delivered to ``cancel/<sid>/<request-id>``.

    A call listens on that address only once it has run for ``tick`` seconds (one sweeper gives
    each its listener): most calls end sooner, and a listener costs a round trip to Redis. A
    cancellation that reaches another replica before then is lost, as one that crosses the
    call's result is (cancellation is best effort in MCP).
    """

    __slots__ = ("_bus", "_calls", "_listeners", "_sweeper", "_tick")

    def __init__(self, bus: MessageBus, tick: float = 0.2) -> None:
        self._bus = bus
        self._tick = tick
        self._calls: dict[tuple[str, RequestId], Cancellable] = {}
        self._listeners: dict[tuple[str, RequestId], asyncio.Task[None]] = {}
        self._sweeper = Sweeper(self._give_listeners)

    def add(self, session_id: str, request_id: RequestId, call: Cancellable) -> None:
        self._calls[(session_id, request_id)] = call
        self._sweeper.ensure(asyncio.get_running_loop())

    def discard(self, session_id: str, request_id: RequestId) -> None:
        key = (session_id, request_id)
        self._calls.pop(key, None)
        listener = self._listeners.pop(key, None)
        if listener is not None:
            listener.cancel()

    async def cancel(self, session_id: str, request_id: RequestId) -> None:
        call = self._calls.get((session_id, request_id))
        if call is not None:
            call.cancel()
        else:
            await self._bus.deliver(_address("cancel", session_id, request_id), {})

    async def _give_listeners(self) -> None:
        loop = asyncio.get_running_loop()
        while self._calls:
            unheard = [key for key in self._calls if key not in self._listeners]
            await asyncio.sleep(self._tick)
            for key in unheard:
                call = self._calls.get(key)
                if call is not None and key not in self._listeners:
                    self._listeners[key] = loop.create_task(self._listen(key, call))

    async def _listen(self, key: tuple[str, RequestId], call: Cancellable) -> None:
        try:
            async with self._bus.listen(_address("cancel", *key)) as messages:
                async for _ in messages:
                    call.cancel()
                    return
        except (AddressInUse, StoreUnavailable):
            logger.warning("a running call could not listen for cancellation from other replicas")


class SharedGetStreams:
    """One GET stream per session cluster-wide: its replica holds the address ``session/<sid>``
    (a presence in Redis, nothing delivered there, no subscription of its own)."""

    __slots__ = ("_bus", "_held")

    def __init__(self, bus: MessageBus) -> None:
        self._bus = bus
        self._held: set[str] = set()

    async def claim(self, session_id: str) -> bool:
        if session_id in self._held:
            return False
        self._held.add(session_id)  # before the await: a second GET here sees it at once
        try:
            held = await self._bus.hold(f"session/{session_id}")
        except BaseException:
            self._held.discard(session_id)
            raise
        if not held:
            self._held.discard(session_id)
        return held

    async def release(self, session_id: str) -> None:
        if session_id in self._held:
            self._held.discard(session_id)
            await self._bus.release_hold(f"session/{session_id}")


@dataclass(slots=True)
class SessionTables:
    """Every table of the session service; by default each is kept in this process."""

    calls: CallsInFlight = field(default_factory=LocalCallsInFlight)
    waiting: WaitingRequests = field(default_factory=LocalWaitingRequests)
    live: LiveStreams = field(default_factory=LocalLiveStreams)
    get_streams: GetStreams = field(default_factory=LocalGetStreams)

    @classmethod
    def shared(cls, bus: MessageBus) -> SessionTables:
        """Tables that reach every replica on ``bus``: answers, cancellations and the one GET
        stream per session. Live POST streams stay per replica: a resumption elsewhere replays
        the stored events."""
        return cls(
            SharedCallsInFlight(bus), SharedWaitingRequests(bus), LocalLiveStreams(), SharedGetStreams(bus)
        )
