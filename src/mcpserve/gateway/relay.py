"""A 2026-07-28 retry for a call parked on another gateway replica, carried over the message bus.

The replica that parked the call (A) listens on ``gateway/<upstream>/<token>``; the token is in
the sealed ``requestState``, so any replica can name it. The replica the retry lands on (B)
listens on a reply address of its own, delivers the answer to A, and relays what comes back:
progress, then the call's result, its error, or the next question. A resumes the waiting upstream
call; the call never runs twice. ``deliver`` tells B whether A still listens, so a call lost with
its replica is a clear error at once, and B probes A while it waits, so it never hangs on a dead
replica either.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import suppress
from typing import Any, Final

import anyio

from mcpserve.errors import InvalidParams, ProtocolError, StoreUnavailable, ToolError
from mcpserve.gateway.rpc import UpstreamFailure, UpstreamRpcError
from mcpserve.server.context import Context, InputRequired
from mcpserve.store.base import MessageBus
from mcpserve.types import JSONObject

__all__ = [
    "Relayed",
    "failure_message",
    "forward",
    "gone",
    "held_address",
    "outcome_message",
    "report",
    "resume_elsewhere",
]

# While B waits it checks A is still there this often; a reply already sent is awaited this long.
PROBE_SECONDS: Final = 1.0
_GRACE_SECONDS: Final = 1.0


def held_address(upstream: str, token: str) -> str:
    return f"gateway/{upstream}/{token}"


def gone(upstream: str) -> ToolError:
    return ToolError(
        f"Upstream {upstream!r}: the call this answer belongs to is gone (it expired, or the gateway "
        "replica holding it stopped); call the tool again"
    )


def _lost(upstream: str) -> ToolError:
    return ToolError(
        f"Upstream {upstream!r}: the gateway replica running this call stopped before it ended; "
        "the call was lost with it (call the tool again)"
    )


class Relayed:
    """The client of a call run for another replica: progress and questions go back over the bus."""

    def __init__(
        self,
        bus: MessageBus,
        reply: str,
        principal: str | None,
        capabilities: JSONObject,
        era: str = "modern",
    ) -> None:
        self.bus = bus
        self.reply = reply
        self.principal_key = principal
        self.client_capabilities = capabilities
        self.era = era  # "modern": a parked call resumed; "legacy": a session's call forwarded

    async def report_progress(
        self, progress: float, total: float | None = None, message: str | None = None
    ) -> None:
        await self.bus.deliver(
            self.reply, {"progress": {"progress": progress, "total": total, "message": message}}
        )

    async def ask(self, method: str, params: JSONObject) -> JSONObject:
        """Put a question to the 2025-era client of the replica the request came in on."""
        address = f"gateway-answer/{secrets.token_urlsafe(16)}"
        async with self.bus.listen(address) as answers:
            question = {"ask": {"method": method, "params": params, "answer": address}}
            if not await self.bus.deliver(self.reply, question):
                raise ToolError("The gateway replica the client talks to is gone")
            answer = await anext(answers, None)
        if answer is None or not isinstance(answer.get("result"), dict):
            raise ToolError(str((answer or {}).get("refused") or "The client could not answer"))
        return answer["result"]  # type: ignore[no-any-return]


def outcome_message(outcome: JSONObject | InputRequired) -> JSONObject:
    if isinstance(outcome, InputRequired):
        return {"input": {"requests": outcome.requests, "state": outcome.state}}
    return {"result": outcome}


def failure_message(exc: Exception) -> JSONObject:
    """What A sends back when the resumed call failed: the same failure is raised on B."""
    if isinstance(exc, UpstreamRpcError):
        return {"error": {"kind": "rpc", "code": exc.code, "message": exc.message}}
    if isinstance(exc, TimeoutError):
        return {"error": {"kind": "timeout", "message": str(exc)}}
    if isinstance(exc, InvalidParams):
        return {"error": {"kind": "invalid", "message": exc.message}}
    return {"error": {"kind": "failure" if isinstance(exc, UpstreamFailure) else "tool", "message": str(exc)}}


def _outcome(message: JSONObject) -> JSONObject | InputRequired:
    if isinstance(message.get("result"), dict):
        return message["result"]  # type: ignore[no-any-return]
    question = message.get("input")
    if isinstance(question, dict) and isinstance(question.get("requests"), dict):
        return InputRequired(question["requests"], question.get("state"))
    error = message.get("error")
    error = error if isinstance(error, dict) else {}
    kind, text = error.get("kind"), str(error.get("message", ""))
    if kind == "rpc":
        code = error.get("code")
        raise UpstreamRpcError(code if isinstance(code, int) else -32603, text)
    if kind == "timeout":
        raise TimeoutError(text)
    if kind == "invalid":
        raise InvalidParams(text)
    if kind == "failure":
        raise UpstreamFailure(text)
    raise ToolError(text or "The gateway replica holding the call could not resume it")


async def _next(
    bus: MessageBus, target: str, replies: AsyncIterator[JSONObject], upstream: str
) -> JSONObject:
    """The next message from A; a lost-call error as soon as A no longer listens."""
    while True:
        with anyio.move_on_after(PROBE_SECONDS):
            message = await anext(replies, None)
            if message is None:
                raise _lost(upstream)
            return message
        if not await bus.deliver(target, {"ping": True}):
            # A replied and left just now, or died: a reply already on its way still counts.
            with anyio.move_on_after(_GRACE_SECONDS):
                message = await anext(replies, None)
                if message is not None:
                    return message
            raise _lost(upstream)


def _request(ctx: Context, reply: str, **fields: Any) -> JSONObject:
    principal = ctx.principal.key if ctx.principal is not None else None
    return {"reply": reply, "principal": principal, "capabilities": ctx.client_capabilities, **fields}


async def resume_elsewhere(
    bus: MessageBus | None, upstream: str, token: str, ctx: Context
) -> JSONObject | InputRequired:
    """Send this retry's answers to the replica holding the parked call; relay what it returns."""
    if bus is None:
        raise gone(upstream)
    reply = f"gateway-reply/{secrets.token_urlsafe(16)}"
    request = _request(ctx, reply, inputResponses=ctx.input_responses or {})
    return await _relay(bus, held_address(upstream, token), reply, request, ctx, upstream, gone(upstream))


async def forward(
    bus: MessageBus, target: str, upstream: str, ctx: Context, method: str, params: JSONObject
) -> JSONObject | InputRequired:
    """Run a session's request on the replica holding its child; relay what it returns."""
    reply = f"gateway-reply/{secrets.token_urlsafe(16)}"
    request = _request(ctx, reply, method=method, params=params, meta=ctx.meta)
    return await _relay(bus, target, reply, request, ctx, upstream, _lost(upstream))


async def _relay(
    bus: MessageBus,
    target: str,
    reply: str,
    request: JSONObject,
    ctx: Context,
    upstream: str,
    unreachable: ToolError,
) -> JSONObject | InputRequired:
    async with bus.listen(reply) as replies:
        if not await bus.deliver(target, request):
            raise unreachable
        try:
            while True:
                message = await _next(bus, target, replies, upstream)
                progress, question = message.get("progress"), message.get("ask")
                if isinstance(progress, dict):
                    await report(ctx, progress)
                elif isinstance(question, dict):
                    await bus.deliver(str(question.get("answer")), await _answer(ctx, question))
                elif "ping" not in message:
                    return _outcome(message)
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True), anyio.move_on_after(2), suppress(StoreUnavailable):
                await bus.deliver(target, {"cancel": reply})  # nothing if the call already ended
            raise


async def _answer(ctx: Context, question: JSONObject) -> JSONObject:
    params = question.get("params")
    try:
        return {
            "result": await ctx.ask(str(question.get("method")), params if isinstance(params, dict) else {})
        }
    except (ProtocolError, ToolError) as exc:
        return {"refused": f"The client could not answer: {exc}"}


async def report(ctx: Context | Relayed, progress: JSONObject) -> None:
    value = progress.get("progress")
    if isinstance(value, int | float):
        await ctx.report_progress(value, progress.get("total"), progress.get("message"))
