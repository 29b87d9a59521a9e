"""JSON-RPC with one upstream: requests multiplexed by id, what comes back routed to its exchange.

An :class:`Exchange` is one request in flight. Its events arrive in order: progress,
questions the upstream asks the client (elicitation, sampling, roots) and finally the result or
an error. When the upstream goes away every exchange ends at once with an error naming it.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol

import orjson

from mcpserve.errors import ToolError
from mcpserve.observability.logs import get_logger
from mcpserve.types import JSONObject

__all__ = ["Ask", "Exchange", "RpcPeer", "outcome_of", "UpstreamFailure", "UpstreamRpcError", "ASK_METHODS"]

logger = get_logger("mcpserve.gateway")

# Requests an upstream may send the client while one of our calls runs.
ASK_METHODS: Final = frozenset({"elicitation/create", "sampling/createMessage", "roots/list"})
# Our calls during which the upstream may ask: they carry a client to ask.
_ASKING_CALLS: Final = frozenset({"tools/call", "prompts/get", "resources/read"})
EventKind = Literal["result", "error", "progress", "ask"]


class UpstreamFailure(ToolError):
    """The upstream could not answer (exited, unreachable, refused): a message naming it."""


class UpstreamRpcError(Exception):
    """The upstream answered with a JSON-RPC error; ``code`` and ``message`` are its own."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


@dataclass(slots=True)
class Ask:
    """A question from the upstream; setting ``answer`` sends the reply back to it."""

    method: str
    params: JSONObject
    answer: asyncio.Future[JSONObject] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class Exchange:
    """One request to the upstream and everything it produces, in order.

    Most exchanges see one event, the result: ``take`` returns what is already there, and
    ``arrival`` is the one future to wait on when nothing is (no queue per request).
    """

    __slots__ = ("_events", "_waiter", "done", "id", "method")

    def __init__(self, request_id: int, method: str) -> None:
        self.id = request_id
        self.method = method
        self._events: collections.deque[tuple[EventKind, Any]] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self.done = False

    def put(self, kind: EventKind, value: Any) -> None:
        if kind in ("result", "error"):
            self.done = True
        self._events.append((kind, value))
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def take(self) -> tuple[EventKind, Any] | None:
        """The next event if one has come, in the order they came."""
        return self._events.popleft() if self._events else None

    def arrival(self) -> asyncio.Future[None]:
        """A future that completes when the next event comes (await it when ``take`` gave None)."""
        self._waiter = asyncio.get_running_loop().create_future()
        return self._waiter

    async def outcome(self) -> JSONObject:
        """The result, skipping progress; a question is declined (there is no client to ask)."""
        while True:
            event = self.take()
            if event is None:
                await self.arrival()
                continue
            kind, value = event
            if kind == "result":
                return value  # type: ignore[no-any-return]
            if kind == "error":
                raise value
            if kind == "ask" and not value.answer.done():
                value.answer.set_exception(UpstreamRpcError(-32601, "No client to ask during this request"))


class _Starts(Protocol):
    def start(self, method: str, params: JSONObject) -> Exchange: ...

    def forget(self, exchange: Exchange) -> None: ...


async def outcome_of(peer: _Starts, method: str, params: JSONObject | None) -> JSONObject:
    """Send one request and wait for its result (progress skipped, questions declined)."""
    exchange = peer.start(method, params or {})
    try:
        return await exchange.outcome()
    finally:
        peer.forget(exchange)


def _error(request_id: Any, code: int, message: str) -> bytes:
    return orjson.dumps({"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}})


class RpcPeer:
    """Our side of one JSON-RPC connection to an upstream; ``send`` writes one encoded message."""

    def __init__(
        self,
        upstream: str,
        send: Callable[[bytes], None],
        on_notification: Callable[[str, JSONObject], None],
    ) -> None:
        self.upstream = upstream
        self._send = send
        self._on_notification = on_notification
        self._ids = itertools.count(1)
        self._pending: dict[int, Exchange] = {}
        self.closed: str | None = None  # the reason, once closed

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    def start(self, method: str, params: JSONObject) -> Exchange:
        """Send a request; its events arrive on the returned exchange."""
        if self.closed is not None:
            raise UpstreamFailure(self.closed)
        exchange = Exchange(next(self._ids), method)
        if method in _ASKING_CALLS:
            # Progress from the upstream names our id as its token: routed back without a table.
            meta = params.get("_meta")
            params = {
                **params,
                "_meta": {**meta, "progressToken": exchange.id} if meta else {"progressToken": exchange.id},
            }
        self._pending[exchange.id] = exchange
        self._send(orjson.dumps({"jsonrpc": "2.0", "id": exchange.id, "method": method, "params": params}))
        return exchange

    async def call(self, method: str, params: JSONObject | None = None) -> JSONObject:
        return await outcome_of(self, method, params)

    def notify(self, method: str, params: JSONObject | None = None) -> None:
        if self.closed is None:
            message: JSONObject = {"jsonrpc": "2.0", "method": method}
            if params is not None:
                message["params"] = params
            self._send(orjson.dumps(message))

    def forget(self, exchange: Exchange) -> None:
        self._pending.pop(exchange.id, None)

    def cancel(self, exchange: Exchange, reason: str) -> None:
        """Tell the upstream we no longer want the answer (our client cancelled or timed out)."""
        if self._pending.pop(exchange.id, None) is not None and not exchange.done:
            self.notify("notifications/cancelled", {"requestId": exchange.id, "reason": reason})

    def close(self, reason: str) -> None:
        """End every request in flight with ``reason``: nothing is retried (calls need not be idempotent)."""
        if self.closed is not None:
            return
        self.closed = reason
        pending, self._pending = self._pending, {}
        for exchange in pending.values():
            exchange.put("error", UpstreamFailure(reason))

    # -- what the upstream sends --------------------------------------------------------------------
    def receive(self, raw: bytes) -> None:
        try:
            message = orjson.loads(raw)
        except orjson.JSONDecodeError:
            logger.warning("upstream sent a line that is not JSON", upstream=self.upstream, length=len(raw))
            return
        if not isinstance(message, dict):
            return
        method = message.get("method")
        if method is None:
            self._response(message)
        elif "id" in message:
            self._request(message["id"], method, message.get("params") or {})
        else:
            self._notification(method, message.get("params") or {})

    def _response(self, message: JSONObject) -> None:
        request_id = message.get("id")
        exchange = self._pending.pop(request_id, None) if isinstance(request_id, int) else None
        if exchange is None:
            return  # an answer to a request we cancelled or never sent
        error = message.get("error")
        if isinstance(error, dict):
            code = error.get("code")
            exchange.put(
                "error",
                UpstreamRpcError(
                    code if isinstance(code, int) else -32603,
                    str(error.get("message", "")),
                    error.get("data"),
                ),
            )
        else:
            result = message.get("result")
            exchange.put("result", result if isinstance(result, dict) else {})

    def _request(self, request_id: Any, method: str, params: JSONObject) -> None:
        if method == "ping":
            self._send(orjson.dumps({"jsonrpc": "2.0", "id": request_id, "result": {}}))
            return
        target = self._asking_exchange() if method in ASK_METHODS else None
        if target is None:
            self._send(_error(request_id, -32601, f"Method not available here: {method}"))
            return
        ask = Ask(method, params)
        ask.answer.add_done_callback(lambda done: self._reply(request_id, done))
        target.put("ask", ask)

    def _asking_exchange(self) -> Exchange | None:
        # stdio carries no link from a question to the request it belongs to: the oldest call
        # that can ask a client takes it (with per-principal children, always that principal's).
        return next((e for e in self._pending.values() if e.method in _ASKING_CALLS), None)

    def _reply(self, request_id: Any, answer: asyncio.Future[JSONObject]) -> None:
        if self.closed is not None:
            return
        if answer.cancelled():
            self._send(_error(request_id, -32800, "The client's request ended before it answered"))
            return
        failure = answer.exception()
        if failure is None:
            self._send(orjson.dumps({"jsonrpc": "2.0", "id": request_id, "result": answer.result()}))
        elif isinstance(failure, UpstreamRpcError):
            self._send(_error(request_id, failure.code, failure.message))
        else:
            self._send(_error(request_id, -32603, str(failure)[:200] or "The client could not answer"))

    def _notification(self, method: str, params: JSONObject) -> None:
        if method == "notifications/progress":
            token = params.get("progressToken")
            exchange = self._pending.get(token) if isinstance(token, int) else None
            if exchange is not None:
                exchange.put("progress", params)
            return
        self._on_notification(method, params)
