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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from mcpserve.errors import InvalidParams, ProtocolError, ResourceNotFound, ServiceUnavailable, ToolError
from mcpserve.gateway.rpc import Ask, Exchange, UpstreamFailure, UpstreamRpcError
from mcpserve.gateway.session import Session
from mcpserve.observability.tracing import inject_meta
from mcpserve.server.context import INPUT_CAPABILITIES, Context, InputRequired
from mcpserve.types import JSONObject

__all__ = ["Bridge", "TRACE_KEYS", "forwarded_meta"]

# W3C trace context (and baggage) forwarded in ``_meta``; nothing else of the client's goes up.
TRACE_KEYS: Final = ("traceparent", "tracestate", "baggage")
_PARKED_KEY: Final = "gateway"


@dataclass(slots=True)
class _Parked:
    session: Session
    exchange: Exchange
    asks: dict[str, Ask]
    principal: str | None
    expires: float


def _principal(ctx: Context) -> str | None:
    return ctx.principal.key if ctx.principal is not None else None


def forwarded_meta(meta: JSONObject | None) -> JSONObject | None:
    """The ``_meta`` sent upstream: the client's trace context, replaced by the gateway's own span
    when tracing is on (the upstream's spans then sit under the gateway's call), nothing else."""
    kept: JSONObject = {k: meta[k] for k in TRACE_KEYS if k in meta} if meta else {}
    inject_meta(kept)
    return kept or None


class Bridge:
    """Runs requests for one upstream and holds its calls parked on a 2026-07-28 client's answer."""

    def __init__(self, upstream: str, park_seconds: float) -> None:
        self.upstream = upstream
        self.park_seconds = park_seconds
        self._parked: dict[str, _Parked] = {}

    async def run(
        self, ctx: Context, acquire: Callable[[], Awaitable[Session]], method: str, params: JSONObject
    ) -> JSONObject | InputRequired:
        """The upstream's result for ``method`` (or the question to put to a 2026-07-28 client)."""
        self._expire()
        parked = self._resume(ctx)
        if parked is not None:
            session, exchange = parked.session, parked.exchange
            for key, ask in parked.asks.items():
                ask.answer.set_result((ctx.input_responses or {})[key])
        else:
            session = await acquire()
            meta = forwarded_meta(ctx.meta)
            exchange = session.start(method, {**params, "_meta": meta} if meta else params)
        return await self._follow(ctx, session, exchange)

    async def _follow(self, ctx: Context, session: Session, exchange: Exchange) -> JSONObject | InputRequired:
        parked = False
        try:
            while True:
                kind, value = await exchange.events.get()
                if kind == "result":
                    return value  # type: ignore[no-any-return]
                if kind == "error":
                    raise value
                if kind == "progress":
                    progress = value.get("progress")
                    if isinstance(progress, int | float):
                        await ctx.report_progress(progress, value.get("total"), value.get("message"))
                    continue
                question = await self._ask(ctx, value)
                if question is not None:
                    parked = True
                    return self._park(ctx, session, exchange, value, question)
        except asyncio.CancelledError:
            if not parked:
                session.cancel(exchange, "The client cancelled the request or it timed out")
            raise
        finally:
            if not parked:
                session.forget(exchange)

    async def _ask(self, ctx: Context, ask: Ask) -> str | None:
        """Answer ``ask`` through a 2025-era client now; for 2026-07-28 return the key to park under."""
        capability = INPUT_CAPABILITIES[ask.method]
        if capability not in ctx.client_capabilities:
            ask.answer.set_exception(UpstreamRpcError(-32601, f"The client does not support {ask.method}"))
            return None
        if ctx.era == "modern":
            return f"{capability}-{secrets.token_hex(4)}"
        try:
            answer = await ctx.ask(ask.method, ask.params)
        except (ProtocolError, ToolError) as exc:
            ask.answer.set_exception(UpstreamRpcError(-32603, f"The client could not answer: {exc}"))
        else:
            ask.answer.set_result(answer)
        return None

    def _park(self, ctx: Context, session: Session, exchange: Exchange, ask: Ask, key: str) -> InputRequired:
        token = secrets.token_urlsafe(16)
        expires = time.monotonic() + self.park_seconds
        self._parked[token] = _Parked(session, exchange, {key: ask}, _principal(ctx), expires)
        return InputRequired({key: {"method": ask.method, "params": ask.params}}, {_PARKED_KEY: token})

    def _resume(self, ctx: Context) -> _Parked | None:
        state = ctx.request_state
        if not isinstance(state, dict) or _PARKED_KEY not in state:
            return None
        parked = self._parked.get(str(state[_PARKED_KEY]))
        if parked is None or parked.principal != _principal(ctx):
            raise ToolError(
                f"Upstream {self.upstream!r}: the call this answer belongs to is gone (expired, or "
                "started on another replica); call the tool again"
            )
        missing = [key for key in parked.asks if not isinstance((ctx.input_responses or {}).get(key), dict)]
        if missing:
            raise InvalidParams(f"inputResponses lacks an answer for {', '.join(missing)}")
        del self._parked[str(state[_PARKED_KEY])]
        return parked

    def _expire(self) -> None:
        if not self._parked:
            return
        now = time.monotonic()
        for token in [t for t, p in self._parked.items() if p.expires < now]:
            parked = self._parked.pop(token)
            parked.session.cancel(parked.exchange, "The client did not answer in time")

    async def close(self) -> None:
        for parked in self._parked.values():
            parked.session.cancel(parked.exchange, "The gateway is stopping")
        self._parked.clear()


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
