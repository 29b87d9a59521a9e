"""Forward one client request to an upstream and carry everything back, in either era.

A 2025-era client gets the upstream's questions (elicitation, sampling, roots) as real requests
and the upstream its answers. A 2026-07-28 client cannot be sent requests: the question ends the
round with ``input_required`` while the upstream call stays parked, waiting; the client's retry
carries the answer, which goes back to that same waiting call (never a second call: calls are not
idempotent). Progress flows back, cancellation flows up, ``_meta`` trace context is forwarded.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

import anyio
from opentelemetry import context as otel_context

from mcpserve.errors import (
    InvalidParams,
    ProtocolError,
    ResourceNotFound,
    ServiceUnavailable,
    StoreUnavailable,
    ToolError,
)
from mcpserve.gateway.relay import (
    Relayed,
    failure_message,
    gone,
    held_address,
    outcome_message,
    report,
    resume_elsewhere,
)
from mcpserve.gateway.rpc import Ask, Exchange, UpstreamFailure, UpstreamRpcError
from mcpserve.gateway.session import Session
from mcpserve.observability.logs import get_logger
from mcpserve.observability.tracing import inject_meta
from mcpserve.server.context import INPUT_CAPABILITIES, Context, InputRequired
from mcpserve.store.base import AddressInUse, MessageBus
from mcpserve.types import JSONObject

__all__ = ["Bridge", "TRACE_KEYS", "forwarded_meta"]

# W3C trace context (and baggage) forwarded in ``_meta``; nothing else of the client's goes up.
TRACE_KEYS: Final = ("traceparent", "tracestate", "baggage")
_PARKED_KEY: Final = "gateway"

logger = get_logger("mcpserve.gateway")


@dataclass(slots=True)
class _Parked:
    session: Session
    exchange: Exchange
    asks: dict[str, Ask]
    principal: str | None
    expires: float
    hold: asyncio.Task[None] | None = None  # listens for a retry that lands on another replica

    def refusal(self, principal: str | None, responses: Any, upstream: str) -> Exception | None:
        """Why a retry cannot resume this call (another principal's, or answers missing)."""
        if principal != self.principal:
            return gone(upstream)
        answers = responses if isinstance(responses, dict) else {}
        missing = [key for key in self.asks if not isinstance(answers.get(key), dict)]
        if missing:
            return InvalidParams(f"inputResponses lacks an answer for {', '.join(missing)}")
        return None

    def answer(self, responses: JSONObject) -> None:
        for key, ask in self.asks.items():
            ask.answer.set_result(responses[key])


Client = Context | Relayed


def _principal(client: Client) -> str | None:
    if isinstance(client, Relayed):
        return client.principal_key
    return client.principal.key if client.principal is not None else None


def _token(ctx: Context) -> str | None:
    state = ctx.request_state
    return str(state[_PARKED_KEY]) if isinstance(state, dict) and _PARKED_KEY in state else None


def forwarded_meta(meta: JSONObject | None) -> JSONObject | None:
    """The ``_meta`` sent upstream: the client's trace context, replaced by the gateway's own span
    when tracing is on (the upstream's spans then sit under the gateway's call), nothing else."""
    kept: JSONObject = {k: meta[k] for k in TRACE_KEYS if k in meta} if meta else {}
    if otel_context.get_current():  # an empty context has no span or baggage to write in
        inject_meta(kept)
    return kept or None


def _with_meta(ctx: Context, params: JSONObject) -> JSONObject:
    meta = forwarded_meta(ctx.meta)
    return {**params, "_meta": meta} if meta else params


class Bridge:
    """Runs requests for one upstream and holds its calls parked on a 2026-07-28 client's answer.

    With a message bus (``bus()``), a parked call also listens for a retry that lands on another
    replica (``relay``): the answer comes over the bus, the call resumes here, the outcome goes back.
    """

    def __init__(
        self, upstream: str, park_seconds: float, bus: Callable[[], MessageBus | None] = lambda: None
    ) -> None:
        self.upstream = upstream
        self.park_seconds = park_seconds
        self._bus = bus
        self._parked: dict[str, _Parked] = {}
        self._holds: set[asyncio.Task[None]] = set()

    def run(
        self,
        ctx: Context,
        session: Session | None,
        acquire: Callable[[Context], Awaitable[Session]],
        method: str,
        params: JSONObject,
    ) -> Awaitable[JSONObject | InputRequired]:
        """The upstream's result for ``method`` (or the question to put to a 2026-07-28 client).

        ``session`` is the ready one when there is (the common case: sent now, one coroutine to
        await); otherwise ``acquire`` waits for it. A retry carrying answers resumes its parked call.
        """
        if self._parked:
            self._expire()
        if _token(ctx) is not None:
            return self._resume(ctx)
        if session is None:
            return self._acquired(ctx, acquire, method, params)
        return self._follow(ctx, session, session.start(method, _with_meta(ctx, params)))

    async def _acquired(
        self,
        ctx: Context,
        acquire: Callable[[Context], Awaitable[Session]],
        method: str,
        params: JSONObject,
    ) -> JSONObject | InputRequired:
        session = await acquire(ctx)
        return await self._follow(ctx, session, session.start(method, _with_meta(ctx, params)))

    async def _resume(self, ctx: Context) -> JSONObject | InputRequired:
        token = _token(ctx)
        assert token is not None
        parked = self._parked.get(token)
        if parked is None:  # parked on another replica, or gone
            return await resume_elsewhere(self._bus(), self.upstream, token, ctx)
        refusal = parked.refusal(_principal(ctx), ctx.input_responses, self.upstream)
        if refusal is not None:
            raise refusal
        self._unpark(token)
        parked.answer(ctx.input_responses or {})
        return await self._follow(ctx, parked.session, parked.exchange)

    async def _follow(
        self, client: Client, session: Session, exchange: Exchange
    ) -> JSONObject | InputRequired:
        parked = False
        try:
            while True:
                event = exchange.take()
                if event is None:
                    await exchange.arrival()
                    continue
                kind, value = event
                if kind == "result":
                    return value  # type: ignore[no-any-return]
                if kind == "error":
                    raise value
                if kind == "progress":
                    await report(client, value)
                    continue
                question = await self._ask(client, value)
                if question is not None:
                    parked = True
                    return await self._park(client, session, exchange, value, question)
        except asyncio.CancelledError:
            if not parked:
                session.cancel(exchange, "The client cancelled the request or it timed out")
            raise
        finally:
            if not parked:
                session.forget(exchange)

    async def _ask(self, client: Client, ask: Ask) -> str | None:
        """Answer ``ask`` through a 2025-era client now; for 2026-07-28 return the key to park under."""
        capability = INPUT_CAPABILITIES[ask.method]
        if capability not in client.client_capabilities:
            ask.answer.set_exception(UpstreamRpcError(-32601, f"The client does not support {ask.method}"))
            return None
        if client.era == "modern":
            return f"{capability}-{secrets.token_hex(4)}"
        try:
            answer = await client.ask(ask.method, ask.params)
        except (ProtocolError, ToolError) as exc:
            ask.answer.set_exception(UpstreamRpcError(-32603, f"The client could not answer: {exc}"))
        else:
            ask.answer.set_result(answer)
        return None

    async def _park(
        self, client: Client, session: Session, exchange: Exchange, ask: Ask, key: str
    ) -> InputRequired:
        token = secrets.token_urlsafe(16)
        expires = time.monotonic() + self.park_seconds
        parked = self._parked[token] = _Parked(session, exchange, {key: ask}, _principal(client), expires)
        bus = self._bus()
        if bus is not None:
            listening = asyncio.get_running_loop().create_future()
            parked.hold = asyncio.create_task(self._hold(token, parked, bus, listening))
            self._holds.add(parked.hold)
            parked.hold.add_done_callback(self._holds.discard)
            await listening  # the client may retry anywhere as soon as it has the answer
        return InputRequired({key: {"method": ask.method, "params": ask.params}}, {_PARKED_KEY: token})

    def _unpark(self, token: str) -> _Parked | None:
        parked = self._parked.pop(token, None)
        if parked is not None and parked.hold is not None and parked.hold is not asyncio.current_task():
            parked.hold.cancel()
        return parked

    # -- a retry that landed on another replica --------------------------------------------------------
    async def _hold(
        self, token: str, parked: _Parked, bus: MessageBus, listening: asyncio.Future[None]
    ) -> None:
        """Wait (until the call expires) for a retry delivered from another replica and serve it."""
        try:
            async with bus.listen(held_address(self.upstream, token)) as messages:
                listening.set_result(None)
                with anyio.move_on_after(max(0.0, parked.expires - time.monotonic())):
                    async for message in messages:
                        reply = message.get("reply")
                        if not isinstance(reply, str):
                            continue  # a probe
                        refusal = parked.refusal(
                            message.get("principal"), message.get("inputResponses"), self.upstream
                        )
                        if refusal is not None:
                            await bus.deliver(reply, failure_message(refusal))
                            continue
                        self._unpark(token)
                        await self._resume_for(bus, parked, message, messages)
                        return
                if self._unpark(token) is not None:
                    parked.session.cancel(parked.exchange, "The client did not answer in time")
        except (AddressInUse, StoreUnavailable) as exc:
            # The call stays parked here: a retry reaching this replica still resumes it.
            logger.warning(
                "a parked gateway call cannot be reached from other replicas", reason=type(exc).__name__
            )
        finally:
            if not listening.done():
                listening.set_result(None)

    async def _resume_for(
        self, bus: MessageBus, parked: _Parked, request: JSONObject, messages: AsyncIterator[JSONObject]
    ) -> None:
        reply = str(request["reply"])
        capabilities = request.get("capabilities")
        client = Relayed(bus, reply, parked.principal, capabilities if isinstance(capabilities, dict) else {})
        parked.answer(request["inputResponses"])
        async with anyio.create_task_group() as group:
            group.start_soon(self._watch, bus, messages, group.cancel_scope, reply)
            await self.serve(client, parked.session, parked.exchange)
            group.cancel_scope.cancel()

    async def serve(self, client: Relayed, session: Session, exchange: Exchange) -> None:
        """Follow ``exchange`` for a client on another replica and send it the outcome."""
        try:
            with anyio.fail_after(self.park_seconds):
                outcome = outcome_message(await self._follow(client, session, exchange))
        except (UpstreamFailure, UpstreamRpcError, TimeoutError) as exc:
            outcome = failure_message(exc)
        await client.bus.deliver(client.reply, outcome)

    async def _watch(
        self, bus: MessageBus, messages: AsyncIterator[JSONObject], scope: anyio.CancelScope, reply: str
    ) -> None:
        """While the resumed call runs: a cancellation ends it; a second retry is told it is gone."""
        async for message in messages:
            if message.get("cancel") == reply:
                scope.cancel()
                return
            if isinstance(message.get("reply"), str):
                await bus.deliver(message["reply"], failure_message(gone(self.upstream)))

    def _expire(self) -> None:
        if not self._parked:
            return
        now = time.monotonic()
        for token in [t for t, p in self._parked.items() if p.expires < now]:
            parked = self._unpark(token)
            if parked is not None:
                parked.session.cancel(parked.exchange, "The client did not answer in time")

    async def close(self) -> None:
        for parked in self._parked.values():
            parked.session.cancel(parked.exchange, "The gateway is stopping")
        self._parked.clear()
        holds, self._holds = self._holds, set()
        for hold in holds:
            hold.cancel()
        await asyncio.gather(*holds, return_exceptions=True)


def tool_failure(upstream: str, exc: Exception) -> ToolError:
    """What a failed upstream tools/call becomes: an ``isError`` result naming the upstream."""
    if isinstance(exc, UpstreamFailure):
        return exc
    if isinstance(exc, UpstreamRpcError):
        return ToolError(f"Upstream {upstream!r} refused the call: {exc.message}")
    if isinstance(exc, TimeoutError):
        return ToolError(f"Upstream {upstream!r} did not answer in time")
    raise exc


def request_failure(upstream: str, exc: Exception, uri: str | None = None) -> ProtocolError:
    """What a failed prompt or resource request becomes: a JSON-RPC error naming the upstream."""
    if isinstance(exc, UpstreamRpcError):
        if uri is not None and exc.code in (-32002, -32602):
            return ResourceNotFound(uri)
        return InvalidParams(f"Upstream {upstream!r}: {exc.message}")
    if isinstance(exc, UpstreamFailure | TimeoutError):
        return ServiceUnavailable(str(exc) or f"Upstream {upstream!r} did not answer in time")
    raise exc
