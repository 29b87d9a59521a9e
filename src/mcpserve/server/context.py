"""The object tool, resource and prompt code receives to talk back to the client.

The same tool code works in both eras. In the 2025 era ``elicit``/``sample``/``list_roots`` send
a real server→client request and wait for the answer. In 2026-07-28 the server may not send
requests, so the first unanswered question ends this round with an ``input_required`` result;
the client retries with the answer, the handler runs again from the top, and questions already
answered (carried in the sealed ``requestState``) return at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, overload

from pydantic import BaseModel, ValidationError

from mcpserve.errors import MissingClientCapability, ToolError
from mcpserve.principal import Principal
from mcpserve.protocol.envelope import LOG_LEVELS, check_log_level
from mcpserve.protocol.session import LegacySession
from mcpserve.server.call import Call, ClosableOutbound
from mcpserve.server.notify_limits import DEFAULT_LIMITS, NotificationBudget, NotificationLimits
from mcpserve.server.signature import describe_validation_error, strip_titles
from mcpserve.types import JSONObject, RequestId

if TYPE_CHECKING:
    from mcpserve.server.app import MCPServer

__all__ = ["Context", "ElicitationResult", "InputRequired", "NeedInput", "INPUT_CAPABILITIES"]

ModelT = TypeVar("ModelT", bound=BaseModel)
logger = logging.getLogger("mcpserve.notifications")
Action = Literal["accept", "decline", "cancel"]


@dataclass(slots=True, frozen=True)
class ElicitationResult(Generic[ModelT]):
    """The user's answer: ``data`` is the validated model when ``action == "accept"``."""

    action: Action
    data: ModelT | None = None
    content: JSONObject | None = None


@dataclass(slots=True, frozen=True)
class InputRequired:
    """Return this from a handler to ask the client for input explicitly (2026-07-28).

    ``requests`` maps your keys to ``{"method": ..., "params": ...}``; ``state`` is any JSON
    value, sealed into ``requestState`` and handed back as ``ctx.request_state`` next round.
    """

    requests: dict[str, JSONObject]
    state: Any = None


class NeedInput(Exception):
    """Raised inside a handler when a 2026-07-28 question has no answer yet."""

    def __init__(self, requests: dict[str, JSONObject]) -> None:
        super().__init__("input required")
        self.requests = requests


def _valid_answer(method: str, answer: Any) -> bool:
    if not isinstance(answer, dict):
        return False
    if method == "elicitation/create":
        return answer.get("action") in ("accept", "decline", "cancel") and isinstance(
            answer.get("content", {}), dict
        )
    if method == "sampling/createMessage":
        return isinstance(answer.get("content"), dict | list) and "role" in answer
    return isinstance(answer.get("roots"), list)  # roots/list


# The client capability each kind of input request needs.
INPUT_CAPABILITIES = {
    "elicitation/create": "elicitation",
    "sampling/createMessage": "sampling",
    "roots/list": "roots",
}


class Context:
    """Per-request handle given to handlers that declare a parameter annotated ``Context``."""

    __slots__ = ("_asked", "_budget", "_call", "_last_progress", "_limits", "_server")

    def __init__(self, call: Call, server: MCPServer, limits: NotificationLimits = DEFAULT_LIMITS) -> None:
        self._call = call
        self._server = server
        self._limits = limits
        self._budget: NotificationBudget | None = None
        self._last_progress: float | None = None
        self._asked = 0

    # -- facts about the request -------------------------------------------------------------
    @property
    def request_id(self) -> RequestId:
        return self._call.id

    @property
    def era(self) -> str:
        return self._call.era

    @property
    def protocol_version(self) -> str:
        return self._call.protocol_version

    @property
    def client_capabilities(self) -> JSONObject:
        return self._call.client_capabilities

    @property
    def client_info(self) -> JSONObject | None:
        return self._call.client_info

    @property
    def principal(self) -> Principal | None:
        """The authenticated caller, or None when authentication is off."""
        return self._call.principal

    @property
    def session(self) -> LegacySession | None:
        """The 2025-era session this request belongs to (None in 2026-07-28)."""
        return self._call.session

    @property
    def headers(self) -> dict[str, str] | None:
        """HTTP request headers (None on stdio). Client input: never an identity assertion."""
        return self._call.headers

    @property
    def input_responses(self) -> JSONObject | None:
        return self._call.input_responses

    @property
    def request_state(self) -> Any:
        """The ``state`` of the :class:`InputRequired` this round answers, verified and opened."""
        return self._call.app_state

    @property
    def server(self) -> MCPServer:
        return self._server

    @property
    def params(self) -> JSONObject:
        """The request's params as the client sent them (read only)."""
        return self._call.params

    @property
    def meta(self) -> JSONObject | None:
        """The request's ``_meta`` object (trace context, progress token, ...), as sent."""
        meta = self._call.params.get("_meta")
        return meta if isinstance(meta, dict) else None

    @property
    def cancelled(self) -> bool:
        """True once this request was cancelled or ran past its time limit.

        An async handler sees cancellation as ``CancelledError`` at its next ``await``. A sync
        handler runs in a worker thread that Python cannot interrupt: it keeps running after the
        request ends (its result is discarded), so long loops should check this and stop early.
        """
        return self._call.cancelled

    # -- progress and logging -----------------------------------------------------------------
    def _allowance(self) -> NotificationBudget:
        if self._budget is None:
            self._budget = NotificationBudget(self._limits)
        return self._budget

    def _dropped(self, kind: str, budget: NotificationBudget) -> None:
        """One server log line per request and kind, at the first drop: never a flood of its own."""
        if (budget.logs if kind == "log" else budget.progress).dropped == 1:
            target = self._call.params.get("name") or self._call.params.get("uri")
            logger.warning(
                "%s notifications of request %s (%s %s) are being dropped: over the per-request limit",
                kind,
                self._call.id,
                self._call.method,
                str(target)[:200],
            )

    async def report_progress(
        self, progress: float, total: float | None = None, message: str | None = None
    ) -> None:
        """Send progress if the client asked for it; values that do not increase are dropped.

        Each request may send ``MCPSERVE_NOTIFICATION_BURST`` at once, then
        ``MCPSERVE_PROGRESS_NOTIFICATIONS_PER_SECOND`` (the latest value when one goes out); the
        one that reaches ``total`` always goes out.
        """
        token = self._call.progress_token
        if token is None or (self._last_progress is not None and progress <= self._last_progress):
            return
        self._last_progress = progress
        budget = self._allowance()
        if not budget.allow_progress(total is not None and progress >= total):
            self._dropped("progress", budget)
            return
        params: JSONObject = {"progressToken": token, "progress": progress}
        if total is not None:
            params["total"] = total
        if message is not None:
            params["message"] = message
        await self._call.outbound.notify("notifications/progress", params)

    async def log(self, level: str, data: Any, *, logger_name: str | None = None) -> None:
        """Send a log message to the client at or above its requested level.

        2026-07-28: only when the request's ``_meta`` names a level. 2025 era: the session's
        ``logging/setLevel`` threshold, everything until one is set. Each request may send
        ``MCPSERVE_NOTIFICATION_BURST`` at once, then ``MCPSERVE_LOG_NOTIFICATIONS_PER_SECOND``;
        the next message after a drop is preceded by a warning saying how many were dropped.
        """
        level = check_log_level(level)
        threshold = self._call.log_level
        if threshold is None and self._call.era == "modern":
            return
        if threshold is not None and LOG_LEVELS.index(level) < LOG_LEVELS.index(threshold):
            return
        budget = self._allowance()
        if not budget.allow_log():
            self._dropped("log", budget)
            return
        if budget.logs.dropped:  # the client learns that it missed some, and how many
            dropped, budget.logs.dropped = budget.logs.dropped, 0
            notice = f"{dropped} log messages dropped: this request exceeded its notification rate limit"
            await self._call.outbound.notify(
                "notifications/message",
                {"level": "warning", "logger": "mcpserve", "data": {"message": notice, "dropped": dropped}},
            )
        params: JSONObject = {"level": level, "data": data}
        if logger_name:
            params["logger"] = logger_name
        await self._call.outbound.notify("notifications/message", params)

    async def debug(self, data: Any, *, logger_name: str | None = None) -> None:
        await self.log("debug", data, logger_name=logger_name)

    async def info(self, data: Any, *, logger_name: str | None = None) -> None:
        await self.log("info", data, logger_name=logger_name)

    async def warning(self, data: Any, *, logger_name: str | None = None) -> None:
        await self.log("warning", data, logger_name=logger_name)

    async def error(self, data: Any, *, logger_name: str | None = None) -> None:
        await self.log("error", data, logger_name=logger_name)

    async def close_sse_stream(self) -> None:
        """Close this request's HTTP response stream now; the work and the stream go on.

        2025 era over HTTP only (SEP-1699 polling): the client reconnects with ``Last-Event-ID``
        after the ``retry`` delay and receives what was sent meanwhile, then the rest live. Use
        it to release connections during long work. Elsewhere (stdio, 2026-07-28, where closing
        a response cancels the request) it does nothing.
        """
        outbound = self._call.outbound
        if self._call.era == "legacy" and isinstance(outbound, ClosableOutbound):
            await outbound.close_stream()

    # -- asking the client ---------------------------------------------------------------------
    @overload
    async def elicit(
        self, message: str, schema: type[ModelT], *, key: str | None = None
    ) -> ElicitationResult[ModelT]: ...

    @overload
    async def elicit(
        self, message: str, schema: JSONObject, *, key: str | None = None
    ) -> ElicitationResult[Any]: ...

    async def elicit(
        self, message: str, schema: type[ModelT] | JSONObject, *, key: str | None = None
    ) -> ElicitationResult[Any]:
        """Ask the user for structured input described by a pydantic model or a JSON Schema."""
        requested = schema if isinstance(schema, dict) else _elicitation_schema(schema)
        answer = await self._ask(
            "elicitation/create", {"message": message, "requestedSchema": requested}, key
        )
        action: Action = answer["action"]
        content = answer.get("content")
        if action != "accept":
            return ElicitationResult(action)
        if isinstance(schema, dict):
            return ElicitationResult(action, content, content)
        try:
            return ElicitationResult(action, schema.model_validate(content or {}), content)
        except ValidationError as exc:
            raise ToolError(
                f"The answer did not match the requested form: {describe_validation_error(exc)}"
            ) from None

    async def sample(
        self,
        messages: str | list[JSONObject],
        *,
        max_tokens: int,
        system_prompt: str | None = None,
        temperature: float | None = None,
        key: str | None = None,
    ) -> JSONObject:
        """Ask the client's model for a completion; returns the ``CreateMessageResult``."""
        if isinstance(messages, str):
            messages = [{"role": "user", "content": {"type": "text", "text": messages}}]
        params: JSONObject = {"messages": messages, "maxTokens": max_tokens}
        if system_prompt is not None:
            params["systemPrompt"] = system_prompt
        if temperature is not None:
            params["temperature"] = temperature
        return await self._ask("sampling/createMessage", params, key)

    async def list_roots(self, *, key: str | None = None) -> list[JSONObject]:
        """The client's filesystem roots."""
        answer = await self._ask("roots/list", {}, key)
        return list(answer["roots"])

    async def ask(self, method: str, params: JSONObject, *, key: str | None = None) -> JSONObject:
        """Send the client an input request as given (``elicitation/create``, ...): its raw answer."""
        if method not in INPUT_CAPABILITIES:
            raise ValueError(f"{method!r} is not a request a server may send a client")
        return await self._ask(method, params, key)

    async def _ask(self, method: str, params: JSONObject, key: str | None) -> JSONObject:
        self._asked += 1
        capability = INPUT_CAPABILITIES[method]
        if self._call.era == "legacy":
            if capability not in self._call.client_capabilities:
                raise MissingClientCapability({capability: {}})
            answer = await self._call.outbound.request(method, params)
            if not _valid_answer(method, answer):
                raise ToolError(f"The client answered {method} with a malformed result")
            return answer
        key = key or f"{capability}-{self._asked}"
        recorded = self._recorded(method, key)
        if recorded is not None:
            return recorded
        if capability not in self._call.client_capabilities:
            raise MissingClientCapability({capability: {}})
        raise NeedInput({key: {"method": method, "params": params}})

    def _recorded(self, method: str, key: str) -> JSONObject | None:
        call = self._call
        if key in call.answers:
            return call.answers[key]  # type: ignore[no-any-return]
        fresh = (call.input_responses or {}).get(key)
        if _valid_answer(method, fresh):
            call.answers[key] = fresh
            return fresh
        return None

    # -- change notifications --------------------------------------------------------------------
    async def notify_tools_changed(self) -> None:
        await self._server.notify_tools_changed()

    async def notify_prompts_changed(self) -> None:
        await self._server.notify_prompts_changed()

    async def notify_resources_changed(self) -> None:
        await self._server.notify_resources_changed()

    async def notify_resource_updated(self, uri: str) -> None:
        await self._server.notify_resource_updated(uri)


def _elicitation_schema(model: type[BaseModel]) -> JSONObject:
    schema: JSONObject = strip_titles(model.model_json_schema())
    schema.pop("$defs", None)
    return schema
