"""OpenTelemetry tracing: request spans, spans around operations, trace context across MCP.

A request's span is decided before it exists (:class:`Sampling`) and, when sampled, recorded
without the SDK's tracer (:class:`ServerSpan`); the spans under it are the SDK's. Off by default
(``MCPSERVE_TRACING``). When it is off nothing here runs: the runtime composes
the untraced dispatcher and limiter, and logging adds no processor. The tracer provider is built
from settings by the composition root (:mod:`mcpserve.tracing_setup`); nothing here reads them.

Trace context crosses MCP in ``params._meta`` (``traceparent``, ``tracestate``, ``baggage``,
unprefixed, SEP-414): the only way a trace reaches a stdio server. :func:`parent_context` reads
it (and the HTTP ``traceparent`` header), :func:`inject_meta` writes it into requests we send.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar, Token
from random import getrandbits
from time import time_ns
from typing import Any, Final, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.sampling import TraceIdRatioBased
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util import types

from mcpserve._version import __version__
from mcpserve.observability.requests import current_request

__all__ = [
    "TRACER_NAME",
    "UNSET",
    "CURRENT_CONTEXT",
    "LOW_64",
    "SPAN_KEY",
    "add_trace_ids",
    "failed",
    "operation_span",
    "inject_meta",
    "parent_context",
    "LeftOut",
    "LeftOutRoot",
    "RequestContext",
    "install_request_context",
    "with_span",
    "Sampling",
    "REQUEST_ID",
    "SESSION_ID",
    "ServerSpan",
    "ServerSpans",
    "SharedAttributes",
    "span_attributes",
    "SdkServerSpans",
    "span_ids",
    "hex_ids",
    "stop_using",
    "use_span",
    "tracer",
]

TRACER_NAME: Final = "mcpserve"
# The keys SEP-414 reserves in _meta (and the W3C header names): written unprefixed.
_CONTEXT_KEYS: Final = ("traceparent", "tracestate", "baggage")
_PROPAGATOR: Final = CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])
# A new trace's flags: its id is random (W3C Trace Context level 2), as the SDK's are.
LOW_64: Final = TraceIdRatioBased.TRACE_ID_LIMIT  # the trace id bits a ratio decides on
_ROOT_UNSAMPLED: Final = TraceFlags(TraceFlags.RANDOM_TRACE_ID)
_ROOT_SAMPLED: Final = TraceFlags(TraceFlags.SAMPLED | TraceFlags.RANDOM_TRACE_ID)
UNSET: Final = Status(StatusCode.UNSET)  # a request span's status until something sets one
_log = logging.getLogger(__name__)
_Subject = TypeVar("_Subject")  # what a request span describes (the dispatcher's call)


def tracer(name: str = TRACER_NAME) -> trace.Tracer:
    """A tracer of the process-wide provider (a proxy until the composition root installs one)."""
    return trace.get_tracer(name, __version__)


# -- the request's span: decided first, recorded without the SDK's tracer ---------------------
class Sampling:
    """The sampler's verdict for a request's span, before any span exists.

    The rule is the SDK's (``ParentBased`` over ``TraceIdRatioBased``, ``ALWAYS_ON`` or
    ``ALWAYS_OFF``, as :func:`mcpserve.tracing_setup.build_sampler` builds it), on the same bits
    of the trace id, so the spans tool code starts under the request's span get the same verdict
    from the SDK. ``ALWAYS_ON`` and ``ALWAYS_OFF`` are the ratios 1 and 0.
    """

    def __init__(self, ratio: float, parent_based: bool) -> None:
        # A new trace is sampled when the low 64 bits of its id are below this.
        self.root_bound = TraceIdRatioBased.get_bound_for_rate(ratio)
        self._parent_based = parent_based

    def sampled(self, trace_id: int, parent: trace.SpanContext | None) -> bool:
        if parent is not None and self._parent_based:
            return parent.trace_flags.sampled
        return trace_id & LOW_64 < self.root_bound


class LeftOut(trace.NonRecordingSpan):
    """The span of a request left out of sampling: its context is built only when read.

    The trace id is the one the decision was made on (a downstream ratio sampler reaches the same
    verdict); the span id and the span context are drawn on first use, by a child span's sampler
    or an outgoing request's ``traceparent``. Most requests never read them.
    """

    _parent: trace.SpanContext | None = None
    _context: trace.SpanContext | None = None  # type: ignore[assignment]

    def __init__(self, trace_id: int, parent: trace.SpanContext | None = None) -> None:  # no super()
        self._trace_id = trace_id
        if parent is not None:
            self._parent = parent

    def get_span_context(self) -> trace.SpanContext:
        context = self._context
        if context is None:
            parent = self._parent
            flags = _ROOT_UNSAMPLED if parent is None else _unsampled_flags(parent)
            state = parent.trace_state if parent is not None else None
            context = self._context = trace.SpanContext(
                self._trace_id, getrandbits(64) or 1, False, flags, state
            )
        return context


class LeftOutRoot(LeftOut):
    """A new trace left out: the decision read only the low 64 bits of its id, drawn first; the
    high half is drawn with the rest of the context, if anything reads it."""

    def __init__(self, low: int) -> None:  # no super().__init__()
        self._trace_id = low

    def get_span_context(self) -> trace.SpanContext:
        if self._context is None:
            self._trace_id = (getrandbits(64) << 64 | self._trace_id) or 1
        return super().get_span_context()


def _unsampled_flags(parent: trace.SpanContext) -> TraceFlags:
    return TraceFlags(parent.trace_flags & TraceFlags.RANDOM_TRACE_ID)


def _sampled_flags(parent: trace.SpanContext | None) -> TraceFlags:
    if parent is None:
        return _ROOT_SAMPLED
    return TraceFlags(TraceFlags.SAMPLED | (parent.trace_flags & TraceFlags.RANDOM_TRACE_ID))


# The SDK's attribute value rules: a primitive, or a sequence of one primitive type (None allowed).
_PRIMITIVES: Final = (bool, str, int, float)
_LIMIT: Final = 128  # attributes, events and links per span: the SDK's default limits


def _clean(key: str, value: Any) -> Any:
    """``value`` as an attribute may hold it, or None (and a warning) when it may not."""
    if isinstance(value, _PRIMITIVES):
        return value
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            pass
    elif isinstance(value, Sequence) and not isinstance(value, str):
        kinds = {type(item) for item in value if item is not None}
        if len(kinds) <= 1 and kinds <= set(_PRIMITIVES):
            return tuple(value)
    _log.warning("invalid type %s for attribute %r: left out", type(value).__name__, key)
    return None


REQUEST_ID: Final = "jsonrpc.request.id"  # a request span's own attributes, kept as plain fields
SESSION_ID: Final = "mcp.session.id"


class SharedAttributes:
    """Attributes that many request spans have in common (the method, the tool, the transport),
    made once and shared; the exporter keeps their OTLP encoding here once it has written it."""

    __slots__ = ("encoded", "values")

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values
        self.encoded: bytes | None = None


_NO_ATTRIBUTES: Final = SharedAttributes({})


def span_attributes(shared: SharedAttributes, request_id: object, session_id: str | None) -> dict[str, Any]:
    """A request span's attributes as a dict: the shared ones, then its request and session ids."""
    attributes = dict(shared.values)
    if request_id is not None:
        attributes[REQUEST_ID] = str(request_id)
    if session_id:
        attributes[SESSION_ID] = session_id
    return attributes


class ServerSpan(trace.Span, ReadableSpan):
    """A request's recorded span, made without the SDK's tracer.

    The SDK's span start runs its sampler again, validates every attribute under a lock and
    builds bounded containers: about 200k CPU instructions per span. This one keeps what the
    request gives it as plain fields (the ids, the shared attributes, the request and session
    ids) and builds the span context and the attribute dict only when something reads them
    (a child span, a processor other than mcpserve's exporter), which in most requests nothing
    does; the exporter writes the fields straight to OTLP. It checks only what tool code sets.
    It is a real OpenTelemetry span: current while the request runs, so spans that tool code,
    SQL, Redis and gateway calls start through the SDK are its children; and a ``ReadableSpan``
    to every processor and exporter. Limits are the SDK's defaults (128 attributes, events, links).
    """

    def __init__(self, name: str, trace_id: int, span_id: int, start_time: int, spans: ServerSpans) -> None:
        # ReadableSpan's __init__ is not called: it would build a default resource first.
        self._name = name
        self._trace_id = trace_id
        self._span_id = span_id
        self._start_time = start_time
        self._spans = spans

    # The rest start the same in most request spans; set when they differ or change.
    _shared = _NO_ATTRIBUTES
    _request_id: object = None
    _session_id: str | None = None
    _values: dict[str, Any] | None = None  # the attributes once read or set (then the only copy)
    _parent: trace.SpanContext | None = None
    _links: Sequence[Link] = ()
    _flags = _ROOT_SAMPLED
    _trace_state: trace.TraceState | None = None
    _built: trace.SpanContext | None = None
    _kind = SpanKind.SERVER
    _events: Sequence[Event] = ()
    _end_time: int | None = None
    _status = UNSET
    _instrumentation_info = None
    _dropped = (0, 0, 0)  # attributes, events, links over the limits

    # ReadableSpan's properties read these fields: each is made from the span's own on demand.
    @property
    def _context(self) -> trace.SpanContext:  # type: ignore[override]
        return self.get_span_context()

    @property
    def _attributes(self) -> dict[str, Any]:  # type: ignore[override]
        return self.attribute_values()

    @property
    def _resource(self) -> Resource:  # type: ignore[override]
        return self._spans.resource

    @property
    def _instrumentation_scope(self) -> InstrumentationScope:  # type: ignore[override]
        return self._spans.scope

    def get_span_context(self) -> trace.SpanContext:
        context = self._built
        if context is None:
            context = self._built = trace.SpanContext(
                self._trace_id, self._span_id, False, self._flags, self._trace_state
            )
        return context

    def attribute_values(self) -> dict[str, Any]:
        """The span's attributes, the dict that holds them from now on."""
        values = self._values
        if values is None:
            values = self._values = span_attributes(self._shared, self._request_id, self._session_id)
        return values

    def is_recording(self) -> bool:
        return self._end_time is None

    @property
    def dropped_attributes(self) -> int:
        return self._dropped[0]

    @property
    def dropped_events(self) -> int:
        return self._dropped[1]

    @property
    def dropped_links(self) -> int:
        return self._dropped[2]

    def set_attribute(self, key: str, value: types.AttributeValue) -> None:
        if self._end_time is not None:
            return
        cleaned = _clean(key, value)
        if cleaned is None:
            return
        attributes = self.attribute_values()
        if key not in attributes and len(attributes) >= _LIMIT:
            self._count_dropped(0)
            return
        attributes[key] = cleaned

    def set_attributes(self, attributes: Mapping[str, types.AttributeValue]) -> None:
        for key, value in attributes.items():
            self.set_attribute(key, value)

    def add_event(self, name: str, attributes: types.Attributes = None, timestamp: int | None = None) -> None:
        if self._end_time is not None:
            return
        if len(self._events) >= _LIMIT:
            self._count_dropped(1)
            return
        self._events = [*self._events, Event(name, attributes, time_ns() if timestamp is None else timestamp)]

    def add_link(self, context: trace.SpanContext, attributes: types.Attributes = None) -> None:
        if self._end_time is not None or (not context.is_valid and not attributes):
            return
        if len(self._links) >= _LIMIT:
            self._count_dropped(2)
            return
        self._links = [*self._links, Link(context, attributes)]

    def _count_dropped(self, which: int) -> None:
        dropped = list(self._dropped)
        dropped[which] += 1
        self._dropped = (dropped[0], dropped[1], dropped[2])

    def update_name(self, name: str) -> None:
        if self._end_time is None:
            self._name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        if self._end_time is not None or self._status.status_code is StatusCode.OK:
            return  # OK is final, as the specification says
        self._status = status if isinstance(status, Status) else Status(status, description)

    def record_exception(
        self,
        exception: BaseException,
        attributes: types.Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        recorded: dict[str, Any] = {
            "exception.type": type(exception).__qualname__,
            "exception.message": str(exception),
            "exception.stacktrace": "".join(traceback.format_exception(exception)),
            "exception.escaped": str(escaped),
        }
        recorded.update(attributes or {})
        self.add_event("exception", recorded, timestamp)

    def end(self, end_time: int | None = None) -> None:
        if self._end_time is not None:
            return
        self._end_time = time_ns() if end_time is None else end_time
        ending = self._spans.ending()
        if ending is not None:
            ending(self)

    def __repr__(self) -> str:
        ids = f"trace_id={self._trace_id:032x}, span_id={self._span_id:016x}"
        return f"ServerSpan(name={self._name!r}, {ids})"


_no_start: Final = SpanProcessor.on_start  # what a processor that does nothing at a span's start has
_UNROUTED: Final = object()  # no span has been routed yet


class ServerSpans:
    """Starts each request's span: the sampling decision first, then a bare or a recorded span.

    A request left out (most of them at a low ratio) costs a random number, a comparison and a
    :class:`LeftOut` span; one sampled costs a :class:`ServerSpan`, its attributes computed only
    then. ``processor`` is the provider's (every span processor it has, the exporter's among
    them), ``resource`` and ``scope`` what the SDK's own spans carry.
    """

    def __init__(
        self, sampling: Sampling, processor: SpanProcessor, resource: Resource, scope: InstrumentationScope
    ) -> None:
        self.sampling = sampling
        self.processor = processor
        self.resource = resource
        self.scope = scope
        # Which processors a span goes to, worked out at the first span and again whenever the
        # provider's list of processors has changed (a new tuple: see _route).
        self._seen: object = _UNROUTED
        self._starting: Callable[[ServerSpan], None] | None = None
        self._ending: Callable[[ServerSpan], None] | None = None

    def _route(self) -> None:
        """Call the processors directly: none, or the one there is, skipping those whose
        ``on_start`` does nothing (the exporter's). ``SynchronousMultiSpanProcessor`` calls
        each in turn, through two calls per span, even when it holds only the exporter."""
        listed = getattr(self.processor, "_span_processors", None)
        self._seen = listed
        if not isinstance(listed, tuple):  # some other processor: through it, as it is
            starting: Callable[..., None] | None = self.processor.on_start
            ending: Callable[..., None] | None = self.processor.on_end
        else:
            starts = [p for p in listed if type(p).on_start is not _no_start]
            starting = starts[0].on_start if len(starts) == 1 else self.processor.on_start if starts else None
            ending = listed[0].on_end if len(listed) == 1 else self.processor.on_end if listed else None
        self._starting, self._ending = starting, ending

    def starting(self) -> Callable[[ServerSpan], None] | None:
        if getattr(self.processor, "_span_processors", None) is not self._seen:
            self._route()
        return self._starting

    def ending(self) -> Callable[[ServerSpan], None] | None:
        if getattr(self.processor, "_span_processors", None) is not self._seen:
            self._route()
        return self._ending

    def start(
        self,
        parent: trace.SpanContext | None,
        describe: Callable[[_Subject], tuple[str, dict[str, Any]]],
        subject: _Subject,
        links: Sequence[Link] = (),
        start_time: int | None = None,
    ) -> trace.Span:
        """The span of a request under ``parent``; ``describe(subject)`` gives its name and attributes."""
        trace_id = parent.trace_id if parent is not None else getrandbits(128) or 1
        if not self.sampling.sampled(trace_id, parent):
            return LeftOut(trace_id, parent)
        name, attributes = describe(subject)
        span = ServerSpan(
            name, trace_id, getrandbits(64) or 1, time_ns() if start_time is None else start_time, self
        )
        span._values = attributes
        if parent is not None:
            span._parent = parent
            span._flags = _sampled_flags(parent)
            span._trace_state = parent.trace_state
        if links:
            span._links = links
        starting = self.starting()
        if starting is not None:
            starting(span)
        return span

    def root(
        self,
        trace_id: int,
        span_id: int,
        name: str,
        shared: SharedAttributes,
        request_id: object,
        session_id: str | None,
    ) -> ServerSpan:
        """The recorded span of a new trace the ratio sampled: no parent, no links, no decision."""
        span = ServerSpan(name, trace_id, span_id, time_ns(), self)
        span._shared = shared
        span._request_id = request_id
        if session_id:
            span._session_id = session_id
        starting = self.starting()
        if starting is not None:
            starting(span)
        return span


class SdkServerSpans:
    """Request spans started by the SDK's tracer: for a tracer provider mcpserve did not build.

    When another provider was installed first (an auto-instrumentation wrapper's, an embedding
    application's), request spans go through it like any other span: its sampler decides after
    the span's name and attributes are computed, and its processors take the span.
    """

    def __init__(self, tracer: trace.Tracer) -> None:
        self._tracer = tracer

    def start(
        self,
        parent: trace.SpanContext | None,
        describe: Callable[[_Subject], tuple[str, dict[str, Any]]],
        subject: _Subject,
        links: Sequence[Link] = (),
        start_time: int | None = None,
    ) -> trace.Span:
        name, attributes = describe(subject)
        return self._tracer.start_span(
            name,
            context=trace.set_span_in_context(trace.NonRecordingSpan(parent)) if parent is not None else None,
            kind=SpanKind.SERVER,
            attributes=attributes,
            links=links,
            start_time=start_time,
        )


# -- the request's span as the current span ----------------------------------------------------
def _context_variable() -> ContextVar[Context] | None:
    """The context variable behind OpenTelemetry's current context, when it is the default one.

    ``attach``/``detach`` reach it through seven Python calls; a request's span is made current
    with none. With another runtime context (``OTEL_PYTHON_CONTEXT``) the public calls are used.
    """
    runtime = getattr(otel_context, "_RUNTIME_CONTEXT", None)
    variable = getattr(runtime, "_current_context", None)
    if isinstance(runtime, ContextVarsRuntimeContext) and isinstance(variable, ContextVar):
        return variable
    return None


_CURRENT: Final = _context_variable()
CURRENT_CONTEXT: Final = _CURRENT
_set_item: Final = dict.__setitem__
# The key OpenTelemetry keeps the current span under in a context: read from one it builds.
SPAN_KEY: Final = next(iter(trace.set_span_in_context(trace.INVALID_SPAN, Context())))


class RequestContext(Context):
    """The OpenTelemetry context a server's requests start in: the request's span, from its record.

    Making a span current costs a context variable set per request, and its reset; with the
    context that carries the span, that was about 8k of the 12.6k CPU instructions a request
    left out of sampling added. Under the HTTP transport, requests start in this context instead
    (installed once before the server starts; every connection's tasks inherit it), and a
    request notes its span on its request record (``span``): a sampled one its recorded span, one
    left out only the low bits of its trace id. Reads of the current span find the request's
    span here; a left-out one is built on the first read (a child span's sampler, an outgoing
    request's ``traceparent``), the same object for every later read in that request, from its
    task or a worker thread. Outside a request it is an empty context.
    """

    __slots__ = ()

    def get(self, key: str, default: object = None) -> object:
        if key == SPAN_KEY:
            span = _request_span()
            if span is not None:
                return span
        return dict.get(self, key, default)

    def __getitem__(self, key: str) -> object:
        if key == SPAN_KEY:
            span = _request_span()
            if span is not None:
                return span
        return dict.__getitem__(self, key)

    def __contains__(self, key: object) -> bool:
        return (key == SPAN_KEY and _request_span() is not None) or dict.__contains__(self, key)

    def copy(self) -> dict[str, object]:
        """What ``set_value`` builds a new context from: the request's span included."""
        values = dict(self)
        span = _request_span()
        if span is not None:
            values[SPAN_KEY] = span
        return values


def _request_span() -> trace.Span | None:
    record = current_request.get()
    if record is None:
        return None
    span = record.span
    if type(span) is int:  # left out, and the first read: the span, kept for the rest of the request
        span = record.span = LeftOutRoot(span)
    return span if isinstance(span, trace.Span) else None


def install_request_context() -> None:
    """Make :class:`RequestContext` this thread's current context (before the server starts, so
    every task it runs inherits it). Nothing when another runtime context is configured."""
    if _CURRENT is not None and type(_CURRENT.get()) is not RequestContext:
        _CURRENT.set(RequestContext(_CURRENT.get()))


def with_span(context: Context, span: trace.Span) -> Context:
    """A copy of ``context`` with ``span`` as its current span (``set_span_in_context`` in no calls)."""
    new = Context(context)
    _set_item(new, SPAN_KEY, span)  # not yet anyone's: Context forbids this once it is shared
    return new


def use_span(span: trace.Span) -> Token[Context] | object:
    """Make ``span`` the current span (for this task or thread); :func:`stop_using` undoes it."""
    if _CURRENT is None:
        return otel_context.attach(trace.set_span_in_context(span))
    return _CURRENT.set(with_span(_CURRENT.get(), span))


def stop_using(token: Token[Context] | object) -> None:
    if _CURRENT is None:
        otel_context.detach(token)  # type: ignore[arg-type]
    else:
        _CURRENT.reset(token)  # type: ignore[arg-type]


# -- context across MCP -----------------------------------------------------------------------
def _carrier(source: Mapping[str, Any]) -> dict[str, str] | None:
    """The W3C context entries of a ``_meta`` object or header map; None when there is no traceparent."""
    if not isinstance(source.get("traceparent"), str):
        return None
    return {key: value for key in _CONTEXT_KEYS if isinstance(value := source.get(key), str)}


def _span_context(carrier: dict[str, str]) -> trace.SpanContext | None:
    context = trace.get_current_span(_PROPAGATOR.extract(carrier)).get_span_context()
    return context if context.is_valid else None


def parent_context(
    meta: Any, headers: Mapping[str, str] | None
) -> tuple[trace.SpanContext | None, Sequence[Link]]:
    """The parent of a request's span, and links to any other context that arrived with it.

    ``_meta`` wins (both eras; on stdio it is the only carrier); the HTTP ``traceparent`` header
    is the parent only when ``_meta`` has none, and otherwise a link (the transport's context
    and the MCP request's are independent: one request may take several HTTP attempts). A
    malformed ``traceparent`` is no parent: the request starts a new trace.
    """
    from_meta = _carrier(meta) if isinstance(meta, dict) and "traceparent" in meta else None
    from_http = _carrier(headers) if headers is not None and "traceparent" in headers else None
    if from_meta is None:
        return (_span_context(from_http) if from_http is not None else None), ()
    parent = _span_context(from_meta)
    transport = _span_context(from_http) if from_http is not None else None
    return parent, ((Link(transport),) if transport is not None else ())


def inject_meta(meta: MutableMapping[str, Any] | None = None) -> MutableMapping[str, Any]:
    """``meta`` (a request's ``_meta``, or a new one) with the current trace context written in.

    The seam for requests mcpserve sends (gateway upstreams): the upstream's server span then
    continues this trace. Without a current span (tracing off) nothing is added.
    """
    carrier: MutableMapping[str, Any] = {} if meta is None else meta
    _PROPAGATOR.inject(carrier)
    return carrier


def span_ids(span: trace.Span) -> tuple[str, str]:
    """The hex trace and span ids, as logs and trace backends print them."""
    context = span.get_span_context()
    return hex_ids(context.trace_id, context.span_id)


def hex_ids(trace_id: int, span_id: int) -> tuple[str, str]:
    """Ids as lowercase hex of fixed width (``bytes.hex``: half the time of ``format``)."""
    return trace_id.to_bytes(16, "big").hex(), span_id.to_bytes(8, "big").hex()


def add_trace_ids(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: every line written inside a recorded span names its trace and span."""
    span = trace.get_current_span()
    if span.is_recording():
        event["trace_id"], event["span_id"] = span_ids(span)
    return event


# -- spans around operations ------------------------------------------------------------------
def failed(span: trace.Span, error_type: str, description: str | None = None) -> None:
    """Mark ``span`` failed the way the conventions ask: ``error.type`` and an ERROR status."""
    span.set_attribute("error.type", error_type)
    span.set_status(Status(StatusCode.ERROR, description))


@contextmanager
def operation_span(
    tracer: trace.Tracer,
    name: str,
    kind: SpanKind,
    attributes: dict[str, Any],
    expected: tuple[type[BaseException], ...] = (),
) -> Iterator[trace.Span]:
    """A current span around one operation (a tool run, a query, an upstream call).

    An exception fails the span with its class name as ``error.type`` (``cancelled`` for a
    cancellation) and goes on; ``expected`` exceptions are control flow, not failures.
    """
    with tracer.start_as_current_span(
        name, kind=kind, attributes=attributes, record_exception=False, set_status_on_exception=False
    ) as span:
        try:
            yield span
        except expected:
            raise
        except asyncio.CancelledError:
            failed(span, "cancelled")
            raise
        except Exception as exc:
            failed(span, type(exc).__qualname__, str(exc)[:200])
            raise
