"""The traced variants the runtime composes when tracing is on: nothing here runs otherwise.

:class:`TracedDispatcher` opens a SERVER span per MCP request (both eras, every transport);
:class:`TracedLimiter` times each Redis budget check. Names and attributes follow the
OpenTelemetry MCP semantic conventions (see ``docs/tracing.md``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine, Sequence
from contextvars import ContextVar
from random import getrandbits
from typing import TYPE_CHECKING, Any, ClassVar, Final, NamedTuple
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind

from mcpserve.observability.requests import current_request
from mcpserve.observability.tracing import (
    CURRENT_CONTEXT,
    SPAN_KEY,
    LeftOutRoot,
    RequestContext,
    SdkServerSpans,
    ServerSpans,
    SharedAttributes,
    failed,
    hex_ids,
    parent_context,
    span_attributes,
    span_ids,
    stop_using,
    use_span,
)
from mcpserve.ratelimit.base import Budget, Decision, Limiter
from mcpserve.server.call import Call
from mcpserve.server.dispatch import Dispatcher
from mcpserve.types import JSONObject

if TYPE_CHECKING:
    from mcpserve.server.app import MCPServer

__all__ = ["TracedDispatcher", "TracedLimiter"]

_set_item: Final = dict.__setitem__  # builds a new Context in place, as with_span does
_untraced: Final = Dispatcher.handle  # the coroutine a left-out request runs as (no super() to build)
_MAX_NAME = 200  # a client-chosen name kept in an attribute is cut here
_TARGETED: Final = {"tools/call": "gen_ai.tool.name", "prompts/get": "gen_ai.prompt.name"}
_RESOURCE_METHODS: Final = frozenset({"resources/read", "resources/subscribe", "resources/unsubscribe"})


class _Timed(NamedTuple):
    """A Redis call made before the request's span could exist (admission runs before dispatch)."""

    start: int
    end: int
    attributes: dict[str, Any]
    error: str | None


# Set by TracedLimiter in the request's own task, taken by the request's span right after.
_admission: ContextVar[_Timed | None] = ContextVar("mcpserve_traced_admission", default=None)


_HTTP: Final = {"network.transport": "tcp", "network.protocol.name": "http"}
_PIPE: Final = {"network.transport": "pipe"}


class _Described(NamedTuple):
    """What requests of one kind share: their attributes, and a tool call's tool and span name."""

    shared: SharedAttributes
    tool: str | None  # tools/call: the tool named (its span is named after it when registered)
    named: str  # the span's name then: "tools/call {tool}"; the method for every other request


# By (method, target, protocol version, over HTTP): a sampled span takes them from here instead
# of building them. Emptied when full (targets are the client's choice).
_SHARED: dict[tuple[str, str | None, str | None, bool], _Described] = {}
_MAX_SHARED: Final = 1024


def _describe_new(method: str, target: str | None, version: str | None, http: bool) -> _Described:
    attributes: dict[str, Any] = {"mcp.method.name": method}
    if version:
        attributes["mcp.protocol.version"] = version
    attributes.update(_HTTP if http else _PIPE)
    tool = None
    if target is not None:
        key = _TARGETED.get(method)
        if key is not None:
            attributes[key] = target[:_MAX_NAME]
            if method == "tools/call":
                attributes["gen_ai.operation.name"] = "execute_tool"
                tool = target
        else:
            attributes["mcp.resource.uri"] = target[:_MAX_NAME]
    named = f"tools/call {tool}" if tool is not None else method
    described = _Described(SharedAttributes(attributes), tool, named)
    if len(_SHARED) >= _MAX_SHARED:
        _SHARED.clear()
    _SHARED[method, target, version, http] = described
    return described


def _described(call: Call) -> _Described:
    method = call.method
    target = call.params.get("name" if method in _TARGETED else "uri" if method in _RESOURCE_METHODS else "")
    if not isinstance(target, str):
        target = None
    version = call.protocol_version or None
    http = call.headers is not None  # stdio calls carry no headers
    return _SHARED.get((method, target, version, http)) or _describe_new(method, target, version, http)


def _session_id(call: Call) -> str | None:
    headers = call.headers
    return headers.get("mcp-session-id") if headers is not None else None


def _span_name(described: _Described, call: Call, server: MCPServer) -> str:
    """``tools/call {tool}`` for a registered tool; the method alone otherwise (bounded cardinality)."""
    tool = described.tool
    return described.named if tool is None or server.registered_tool(tool) is not None else call.method


def _record_outcome(span: trace.Span, response: JSONObject) -> None:
    error = response.get("error")
    if isinstance(error, dict):
        code = str(error.get("code"))
        span.set_attribute("rpc.response.status_code", code)
        message = error.get("message")
        failed(span, code, message if isinstance(message, str) else None)
        return
    result = response.get("result")
    if isinstance(result, dict) and result.get("isError"):
        failed(span, "tool_error")


class TracedDispatcher(Dispatcher):
    """A :class:`Dispatcher` whose requests are SERVER spans.

    A ``tools/call`` span is also the tool call's span (``gen_ai.operation.name`` is
    ``execute_tool``, as the conventions have it): what the tool does (queries, upstream calls,
    its own spans) are its children. ``spans`` decides each request's sampling before any span
    exists and makes the span (see :class:`~mcpserve.observability.tracing.ServerSpans`);
    ``tracer`` makes the Redis check's child span.
    """

    def __init__(
        self, server: MCPServer, *, tracer: trace.Tracer, spans: ServerSpans | SdkServerSpans, **options: Any
    ) -> None:
        super().__init__(server, **options)
        self.tracer = tracer
        self.spans = spans
        # The short way for a request without trace context that the ratio leaves out: most
        # requests at a low ratio. Ours: the decision and a bare span made current, in one frame.
        self._fast: tuple[ContextVar[Context], int] | None = None
        if isinstance(spans, ServerSpans) and CURRENT_CONTEXT is not None:
            self._fast = (CURRENT_CONTEXT, spans.sampling.root_bound)

    def handle(self, call: Call) -> Coroutine[Any, Any, JSONObject]:
        """The response to ``call``, awaited in the request's own task (as every transport does).

        A request left out runs as the untraced dispatcher's coroutine itself, with its bare span
        made current here and left current: the request's task ends with the request (stdio and
        both HTTP eras run each request in a task of its own), so there is nothing to reset and
        no frame of ours in the way of each resumption. Under the HTTP transport, whose requests
        start in a :class:`RequestContext`, not even that: the request's record notes the trace
        id's low bits, and the span is built only if something reads the current span.
        """
        fast = self._fast
        # No Redis check's span to make (none can be, unless a traced limiter exists).
        if fast is not None and (not TracedLimiter.made or _admission.get() is None):
            meta = call.params.get("_meta")
            headers = call.headers
            if (type(meta) is not dict or "traceparent" not in meta) and (
                headers is None or "traceparent" not in headers
            ):  # a new trace
                low = getrandbits(64)  # the bits of a new trace id the decision reads
                current, bound = fast
                if low >= bound:  # left out
                    outer = current.get()
                    if type(outer) is RequestContext:  # the HTTP transport: noted, read on demand
                        record = current_request.get()
                        if record is not None:
                            record.span = low
                            return _untraced(self, call)
                    context = Context(outer) if outer else Context()  # an empty one is cheaper new
                    _set_item(context, SPAN_KEY, LeftOutRoot(low))  # as with_span does, inline
                    current.set(context)
                    return _untraced(self, call)
                return self._traced(call, getrandbits(64) << 64 | low)
        return self._traced(call, None)

    async def _traced(self, call: Call, trace_id: int | None) -> JSONObject:
        """``call`` under its span: sampled, or with trace context the SDK's rules decide on.

        ``trace_id`` comes only from :meth:`handle`'s short way: a new trace the ratio sampled,
        with mcpserve's spans on the default context variable and no parent, links or admission
        span. Its span is started and its ids noted here, in the fewest calls, and made current
        through the request's record when the request runs in a :class:`RequestContext`.
        """
        entered: object = None  # a context variable's token to reset, when one was set
        if trace_id is not None:
            span_id = getrandbits(64) or 1
            described = _described(call)
            span: trace.Span = self.spans.root(  # type: ignore[union-attr]  # the short way's (__init__)
                trace_id,
                span_id,
                _span_name(described, call, self.server),
                described.shared,
                call.id,
                _session_id(call),
            )
            current: ContextVar[Context] = CURRENT_CONTEXT  # type: ignore[assignment]  # likewise
            outer = current.get()
            record = current_request.get()
            if record is not None:
                record.trace = hex_ids(trace_id, span_id)
            if record is not None and type(outer) is RequestContext:
                record.span = span  # current through the record (see RequestContext)
            else:
                context = Context(outer)
                _set_item(context, SPAN_KEY, span)  # as with_span does, inline
                entered = current.set(context)
        else:
            span = self._start(call)
            entered = use_span(span)
        try:
            response = await _untraced(self, call)
        except asyncio.CancelledError:
            if span.is_recording():
                failed(span, "cancelled")
                span.end()
            raise
        finally:
            if entered is not None:
                stop_using(entered)
        if span.is_recording():
            result = response.get("result")
            if type(result) is not dict or result.get("isError"):  # an error answer or a tool's error
                _record_outcome(span, response)
            span.end()
        return response

    def _start(self, call: Call) -> trace.Span:
        """The request's span: a bare context when it is left out, else a recorded one."""
        parent, links = parent_context(call.params.get("_meta"), call.headers)
        admitted = _admission.get()
        if admitted is not None:
            _admission.set(None)
        start_time = admitted.start if admitted else None
        span = self.spans.start(parent, self._describe, call, links, start_time)
        if span.is_recording():
            record = current_request.get()
            if record is not None:
                record.trace = span_ids(span)
            if admitted is not None:
                self._admission_span(span, admitted)
        return span

    def _describe(self, call: Call) -> tuple[str, dict[str, Any]]:
        """A sampled request's span name and attributes (a request left out never computes them)."""
        described = _described(call)
        return _span_name(described, call, self.server), span_attributes(
            described.shared, call.id, _session_id(call)
        )

    def _admission_span(self, parent: trace.Span, timed: _Timed) -> None:
        child = self.tracer.start_span(
            "EVALSHA",
            context=trace.set_span_in_context(parent),
            kind=SpanKind.CLIENT,
            attributes=timed.attributes,
            start_time=timed.start,
        )
        if timed.error is not None:
            failed(child, timed.error)
        child.end(end_time=timed.end)


def _redis_attributes(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    attributes: dict[str, Any] = {"db.system.name": "redis", "db.operation.name": "EVALSHA"}
    if parts.scheme == "unix":
        attributes["server.address"] = parts.path
        return attributes
    attributes["server.address"] = parts.hostname or ""
    attributes["server.port"] = parts.port or 6379
    database = parts.path.strip("/")
    attributes["db.namespace"] = database or "0"
    return attributes


class TracedLimiter:
    """A :class:`Limiter` whose Redis calls become CLIENT spans of the request they admit.

    Admission runs before the request reaches the dispatcher, so the call is timed here and the
    span is made by the request's own span (which then starts at the admission).
    """

    # Set once one exists: until then the dispatcher has no admission to look for.
    made: ClassVar[bool] = False

    def __init__(self, limiter: Limiter, url: str) -> None:
        TracedLimiter.made = True
        self._limiter = limiter
        self._attributes = _redis_attributes(url)

    async def hit(self, budgets: Sequence[Budget]) -> Decision:
        start = time.time_ns()
        try:
            decision = await self._limiter.hit(budgets)
        except BaseException as exc:
            error = "cancelled" if isinstance(exc, asyncio.CancelledError) else type(exc).__qualname__
            _admission.set(_Timed(start, time.time_ns(), self._attributes, error))
            raise
        _admission.set(_Timed(start, time.time_ns(), self._attributes, None))
        return decision

    async def aclose(self) -> None:
        await self._limiter.aclose()
