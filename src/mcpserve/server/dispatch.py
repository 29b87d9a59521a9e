"""Route one request to its handler and turn every outcome into a JSON-RPC reply.

This is the single place where exceptions become wire errors. Transports hand in a
:class:`~mcpserve.server.call.Call`, get back a complete response object, and never see a
Python exception from a handler.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import anyio

from mcpserve.errors import (
    InvalidParams,
    MethodNotFound,
    MissingClientCapability,
    ProtocolError,
    ResourceNotFound,
    ToolError,
)
from mcpserve.protocol import jsonrpc
from mcpserve.protocol.envelope import SERVER_INFO_KEY, SUBSCRIPTION_ID_KEY
from mcpserve.protocol.request_state import open_request_state, seal_request_state
from mcpserve.protocol.sealing import KeyRing
from mcpserve.protocol.session import start_session
from mcpserve.protocol.versions import MODERN_VERSIONS
from mcpserve.server import failures
from mcpserve.server.call import Call
from mcpserve.server.context import INPUT_CAPABILITIES, Context, InputRequired, NeedInput
from mcpserve.server.deadlines import DeadlineKeeper
from mcpserve.server.listen import listen
from mcpserve.server.notify_limits import DEFAULT_LIMITS, NotificationLimits
from mcpserve.server.pagination import paginate
from mcpserve.server.prompts import to_messages
from mcpserve.server.resources import to_contents
from mcpserve.server.tools import Tool
from mcpserve.types import JSONObject

if TYPE_CHECKING:
    from mcpserve.server.app import MCPServer

__all__ = ["Dispatcher", "CacheHint"]

Handler = Callable[["Dispatcher", Call], Awaitable[JSONObject]]
_LEGACY_MRTR_ROUNDS: Final = 10


@dataclass(slots=True, frozen=True)
class _InputRequiredResult:
    """A round that ended asking the client for input; kept apart from any handler return value."""

    result: JSONObject


class CacheHint:
    """``ttlMs``/``cacheScope`` for cacheable 2026-07-28 results."""

    __slots__ = ("scope", "ttl_ms")

    def __init__(self, ttl_ms: int = 0, scope: str = "public") -> None:
        self.ttl_ms = ttl_ms
        self.scope = scope


_DEFAULT_HINTS: Final = {
    "server/discover": CacheHint(0, "public"),
    "tools/list": CacheHint(0, "public"),
    "prompts/list": CacheHint(0, "public"),
    "resources/list": CacheHint(0, "public"),
    "resources/templates/list": CacheHint(0, "public"),
    # Reads may depend on the caller: never shared across authorization contexts by default.
    "resources/read": CacheHint(0, "private"),
}


def _check_capabilities(call: Call, requests: dict[str, JSONObject]) -> None:
    """Refuse input requests of a kind the client did not declare on this request (or session)."""
    for request in requests.values():
        capability = INPUT_CAPABILITIES.get(str(request.get("method")), "roots")
        if capability not in call.client_capabilities:
            raise MissingClientCapability({capability: {}})


def _string_param(params: JSONObject, name: str) -> str:
    value = params.get(name)
    if not isinstance(value, str):
        raise InvalidParams(f"params.{name} must be a string")
    return value


def _object_param(params: JSONObject, name: str) -> JSONObject:
    value = params.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidParams(f"params.{name} must be an object")
    return value


class Dispatcher:
    """Runs requests against an :class:`MCPServer` under one set of runtime policies."""

    def __init__(
        self,
        server: MCPServer,
        *,
        keyring: KeyRing | None = None,
        request_state_ttl: float = 600.0,
        tool_timeout: float | None = 60.0,
        tool_timeouts: dict[str, float] | None = None,
        page_size: int = 100,
        cache_hints: dict[str, CacheHint] | None = None,
        clock: Callable[[], float] = time.time,
        notification_limits: NotificationLimits = DEFAULT_LIMITS,
    ) -> None:
        self.server = server
        self.keyring = keyring or KeyRing.ephemeral()
        self.request_state_ttl = request_state_ttl
        self.tool_timeout = tool_timeout
        self.tool_timeouts = dict(tool_timeouts or {})
        self.page_size = page_size
        self.cache_hints = {**_DEFAULT_HINTS, **(cache_hints or {})}
        self.clock = clock
        self.notification_limits = notification_limits
        self.deadlines = DeadlineKeeper()
        self._closing: anyio.Event | None = None

    @property
    def closing(self) -> anyio.Event:
        """Set at shutdown: listen streams end with their final result. Created inside the loop."""
        if self._closing is None:
            self._closing = anyio.Event()
        return self._closing

    # -- the boundary -------------------------------------------------------------------------
    async def handle(self, call: Call) -> JSONObject:
        """The JSON-RPC response for ``call``. Never raises, except for cancellation."""
        modern = call.era == "modern"
        try:
            handler = (_MODERN if modern else _LEGACY).get(call.method)
            if handler is None:
                raise MethodNotFound(f"Method not found: {call.method}")
            result = await handler(self, call)
            if modern:
                result.setdefault("resultType", "complete")
                meta = result.get("_meta")
                info = {SERVER_INFO_KEY: self.server.info}
                result["_meta"] = info if meta is None else {**meta, **info}
                hint = self.cache_hints.get(call.method)
                if hint is not None and result["resultType"] == "complete":
                    result["ttlMs"] = hint.ttl_ms
                    result["cacheScope"] = hint.scope
        except ProtocolError as exc:
            return failures.error_response(call.id, exc, call.era)
        except asyncio.CancelledError:
            call.cancelled = True  # sync tools still running in a worker thread can see this
            raise
        except Exception:
            return failures.error_response(call.id, failures.unexpected(call.method), call.era)
        return jsonrpc.result_response(call.id, result)

    # -- lifecycle (2025 era) -------------------------------------------------------------------
    async def _initialize(self, call: Call) -> JSONObject:
        if call.session is not None:
            raise InvalidParams("This connection is already initialized")
        call.session = start_session(call.params, call.principal.key if call.principal else None)
        result: JSONObject = {
            "protocolVersion": call.session.protocol_version,
            "capabilities": self.server.capabilities(),
            "serverInfo": self.server.info,
        }
        if self.server.instructions:
            result["instructions"] = self.server.instructions
        return result

    async def _ping(self, call: Call) -> JSONObject:
        return {}

    async def _set_level(self, call: Call) -> JSONObject:
        assert call.session is not None
        call.session = call.session.with_log_level(call.params.get("level"))
        return {}

    async def _subscribe(self, call: Call) -> JSONObject:
        assert call.session is not None
        uri = _string_param(call.params, "uri")
        await self.server.subscribed(uri)
        call.session = call.session.subscribe(uri)
        return {}

    async def _unsubscribe(self, call: Call) -> JSONObject:
        assert call.session is not None
        call.session = call.session.unsubscribe(_string_param(call.params, "uri"))
        return {}

    # -- discovery and lists --------------------------------------------------------------------
    async def _discover(self, call: Call) -> JSONObject:
        result: JSONObject = {
            "supportedVersions": list(MODERN_VERSIONS),
            "capabilities": self.server.capabilities(),
        }
        if self.server.instructions:
            result["instructions"] = self.server.instructions
        return result

    def _page(self, call: Call, key: str, items: list[JSONObject]) -> JSONObject:
        cursor = call.params.get("cursor")
        page, next_cursor = paginate(items, cursor, self.page_size)
        result: JSONObject = {key: page}
        if next_cursor is not None:
            result["nextCursor"] = next_cursor
        return result

    async def _list_tools(self, call: Call) -> JSONObject:
        return self._page(call, "tools", self.server.definitions("tools", call.principal))

    async def _list_prompts(self, call: Call) -> JSONObject:
        return self._page(call, "prompts", self.server.definitions("prompts", call.principal))

    async def _list_resources(self, call: Call) -> JSONObject:
        return self._page(call, "resources", self.server.definitions("resources", call.principal))

    async def _list_templates(self, call: Call) -> JSONObject:
        items = self.server.definitions("resourceTemplates", call.principal)
        return self._page(call, "resourceTemplates", items)

    # -- work that may ask the client for input -----------------------------------------------------
    def timeout_for(self, tool: Tool) -> float | None:
        """The tool's limit: the operator's per-tool setting, else the decorator's, else the default."""
        return self.tool_timeouts.get(tool.name, tool.timeout or self.tool_timeout)

    async def _call_tool(self, call: Call) -> JSONObject:
        name = _string_param(call.params, "name")
        arguments = _object_param(call.params, "arguments")
        tool = self.server.find_tool(name, call.principal)
        if tool is None:
            # An execution error, not -32602: the model can read it and pick another tool.
            return failures.error_result(f"Unknown tool: {name!r}")
        seconds = self.timeout_for(tool)
        try:
            context = (
                Context(call, self.server, self.notification_limits) if tool.signature.context_param else None
            )
            kwargs = tool.bind(arguments, context)
            deadline = self.deadlines.start(seconds, call.task) if seconds else None
            try:
                outcome = await self._rounds(call, name, arguments, lambda: tool.run(kwargs))
            except asyncio.CancelledError:
                if deadline is None or not deadline.expired:
                    raise
                asyncio.current_task().uncancel()  # type: ignore[union-attr]
                call.cancelled = True
                assert seconds is not None
                return failures.timeout_result(name, seconds)
            finally:
                if deadline is not None:
                    self.deadlines.stop(deadline)
            return outcome.result if isinstance(outcome, _InputRequiredResult) else tool.to_result(outcome)
        except ToolError as exc:
            return failures.error_result(str(exc))
        except MissingClientCapability as exc:
            if call.era == "modern":
                raise
            return failures.error_result(exc.message)
        except ProtocolError:
            raise  # raised on purpose (by us or the tool): answered as that JSON-RPC error
        except Exception:
            return failures.tool_failure_result(name)

    async def _get_prompt(self, call: Call) -> JSONObject:
        name = _string_param(call.params, "name")
        arguments = _object_param(call.params, "arguments")
        prompt = self.server.find_prompt(name, call.principal)
        if prompt is None:
            raise InvalidParams(f"Unknown prompt: {name!r}")
        context = Context(call, self.server, self.notification_limits)
        outcome = await self._rounds(call, name, arguments, lambda: prompt.render(arguments, context))
        if isinstance(outcome, _InputRequiredResult):
            return outcome.result
        result: JSONObject = {"messages": to_messages(outcome)}
        if "description" in prompt.definition:
            result["description"] = prompt.definition["description"]
        return result

    async def _read_resource(self, call: Call) -> JSONObject:
        uri = _string_param(call.params, "uri")
        found = self.server.find_resource(uri, call.principal)
        if found is None:
            raise ResourceNotFound(uri)
        resource, variables = found
        produce = functools.partial(
            resource.read, variables, Context(call, self.server, self.notification_limits)
        )
        outcome = await self._rounds(call, uri, None, produce)
        if isinstance(outcome, _InputRequiredResult):
            return outcome.result
        return {"contents": to_contents(uri, outcome, resource.mime_type)}

    async def _rounds(
        self, call: Call, target: str, arguments: JSONObject | None, produce: Callable[[], Awaitable[Any]]
    ) -> Any:
        """Run a handler that may need client input, in the way the call's era allows.

        2026-07-28: one round per request; an unanswered question becomes ``input_required``.
        2025 era: questions become server→client requests and the handler re-runs with the
        answers, so handlers written for the round-trip model also work here.
        """
        if call.era == "modern":
            self._open_state(call, target, arguments)
            try:
                value = await produce()
            except NeedInput as need:
                return self._input_required(call, target, arguments, need.requests, call.app_state)
            if isinstance(value, InputRequired):
                return self._input_required(call, target, arguments, value.requests, value.state)
            return value
        for _ in range(_LEGACY_MRTR_ROUNDS):
            value = await produce()
            if not isinstance(value, InputRequired):
                return value
            _check_capabilities(call, value.requests)  # never send a request the client cannot take
            answers = {}
            for key, request in value.requests.items():
                answers[key] = await call.outbound.request(request["method"], request.get("params", {}))
            call.input_responses, call.app_state = answers, value.state
        raise ToolError("The handler kept asking for input; giving up after 10 rounds")

    def _binding(self, call: Call, target: str, arguments: JSONObject | None) -> dict[str, Any]:
        principal = call.principal.key if call.principal else None
        return {"principal": principal, "method": call.method, "target": target, "arguments": arguments}

    def _open_state(self, call: Call, target: str, arguments: JSONObject | None) -> None:
        responses = call.params.get("inputResponses")
        call.input_responses = responses if isinstance(responses, dict) else None
        token = call.params.get("requestState")
        if token is None:
            return
        opened = open_request_state(
            self.keyring, token, **self._binding(call, target, arguments), now=self.clock()
        )
        # Only this module seals request state, always as {"a": answers, "s": app state}.
        call.answers = dict(opened.get("a") or {})
        call.app_state = opened.get("s")

    def _input_required(
        self,
        call: Call,
        target: str,
        arguments: JSONObject | None,
        requests: dict[str, JSONObject],
        state: Any,
    ) -> _InputRequiredResult:
        _check_capabilities(call, requests)
        sealed = seal_request_state(
            self.keyring,
            {"a": call.answers, "s": state},
            **self._binding(call, target, arguments),
            now=self.clock(),
            ttl=self.request_state_ttl,
        )
        return _InputRequiredResult(
            {"resultType": "input_required", "inputRequests": requests, "requestState": sealed}
        )

    # -- completion and subscriptions -----------------------------------------------------------------
    async def _complete(self, call: Call) -> JSONObject:
        return {"completion": await self.server.complete(call.params, call.principal)}

    async def _listen(self, call: Call) -> JSONObject:
        filters = call.params.get("notifications")
        if not isinstance(filters, dict):
            raise InvalidParams("params.notifications must be an object")
        await listen(call, filters, self.server, self.closing)
        return {"_meta": {SUBSCRIPTION_ID_KEY: call.id}}


_COMMON: dict[str, Handler] = {
    "tools/list": Dispatcher._list_tools,
    "tools/call": Dispatcher._call_tool,
    "prompts/list": Dispatcher._list_prompts,
    "prompts/get": Dispatcher._get_prompt,
    "resources/list": Dispatcher._list_resources,
    "resources/templates/list": Dispatcher._list_templates,
    "resources/read": Dispatcher._read_resource,
    "completion/complete": Dispatcher._complete,
}
_MODERN: Final[dict[str, Handler]] = {
    **_COMMON,
    "server/discover": Dispatcher._discover,
    "subscriptions/listen": Dispatcher._listen,
}
_LEGACY: Final[dict[str, Handler]] = {
    **_COMMON,
    "initialize": Dispatcher._initialize,
    "ping": Dispatcher._ping,
    "logging/setLevel": Dispatcher._set_level,
    "resources/subscribe": Dispatcher._subscribe,
    "resources/unsubscribe": Dispatcher._unsubscribe,
}
