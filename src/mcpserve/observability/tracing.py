"""OpenTelemetry tracing: spans around operations, early root sampling, trace context across MCP.

Off by default (``MCPSERVE_TRACING``). When it is off nothing here runs: the runtime composes
the untraced dispatcher and limiter, and logging adds no processor. The tracer provider is built
from settings by the composition root (:mod:`mcpserve.tracing_setup`); nothing here reads them.

Trace context crosses MCP in ``params._meta`` (``traceparent``, ``tracestate``, ``baggage``,
unprefixed, SEP-414): the only way a trace reaches a stdio server. :func:`parent_context` reads
it (and the HTTP ``traceparent`` header), :func:`inject_meta` writes it into requests we send.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from random import getrandbits
from typing import Any, Final

from opentelemetry import trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import TraceIdRatioBased
from opentelemetry.trace import Link, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from mcpserve._version import __version__

__all__ = [
    "TRACER_NAME",
    "add_trace_ids",
    "failed",
    "operation_span",
    "inject_meta",
    "parent_context",
    "PresetIds",
    "RootSampling",
    "span_ids",
    "tracer",
]

TRACER_NAME: Final = "mcpserve"
# The keys SEP-414 reserves in _meta (and the W3C header names): written unprefixed.
_CONTEXT_KEYS: Final = ("traceparent", "tracestate", "baggage")
_PROPAGATOR: Final = CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])
# Not sampled; the trace id is random (W3C Trace Context level 2), as the SDK's are.
_UNSAMPLED: Final = TraceFlags(TraceFlags.RANDOM_TRACE_ID)


def tracer(name: str = TRACER_NAME) -> trace.Tracer:
    """A tracer of the process-wide provider (a proxy until the composition root installs one)."""
    return trace.get_tracer(name, __version__)


# -- early sampling for root requests ------------------------------------------------------
class PresetIds(RandomIdGenerator):
    """Random ids, except that a trace id drawn for a root request beforehand is used for its span.

    :class:`RootSampling` decides a root request's sampling from a trace id it draws itself; the
    SDK then builds the sampled span on that same id (and its sampler reaches the same verdict).
    Per thread: the id is handed over within one synchronous call, never across threads.
    """

    def __init__(self) -> None:
        self._preset = threading.local()

    def preset(self, trace_id: int | None) -> None:
        self._preset.trace_id = trace_id

    def generate_trace_id(self) -> int:
        trace_id: int | None = getattr(self._preset, "trace_id", None)
        if trace_id is None:
            return super().generate_trace_id()
        self._preset.trace_id = None
        return trace_id


class _LeftOut(trace.NonRecordingSpan):
    """The span of a root request left out of sampling: its context is built only when read.

    The trace id is the one the decision was made on (a downstream ratio sampler reaches the same
    verdict); the span id and the span context are drawn on first use, by a child span's sampler
    or an outgoing request's ``traceparent``. Most requests never read them.
    """

    def __init__(self, trace_id: int) -> None:  # no super().__init__(): there is no context yet
        self._trace_id = trace_id
        self._context: trace.SpanContext | None = None  # type: ignore[assignment]

    def get_span_context(self) -> trace.SpanContext:
        context = self._context
        if context is None:
            context = self._context = trace.SpanContext(
                self._trace_id, getrandbits(64) or 1, False, _UNSAMPLED
            )
        return context


class RootSampling:
    """The sampling decision for a request that arrived without trace context, made before any span.

    Requests left out (most of them at a low ratio) then cost a random number, a comparison and
    a bare span whose context is built only if something reads it (tool code's spans and outgoing
    requests still follow the unsampled trace) instead of the SDK's sampler and span start. The
    rule is the SDK's ratio sampler's, on the same bits of the trace id, so the span the SDK then
    starts gets the same verdict.
    """

    def __init__(self, ratio: float, ids: PresetIds) -> None:
        self._bound = TraceIdRatioBased.get_bound_for_rate(ratio)
        self._ids = ids

    def unsampled(self) -> trace.Span | None:
        """A non-recording span when the new trace is left out; None (and the id preset) otherwise."""
        trace_id = getrandbits(128) or 1
        if trace_id & TraceIdRatioBased.TRACE_ID_LIMIT < self._bound:
            self._ids.preset(trace_id)
            return None
        return _LeftOut(trace_id)

    def forget(self) -> None:
        """Drop a preset id the SDK did not take (it does whenever it starts a new trace)."""
        self._ids.preset(None)


# -- context across MCP -----------------------------------------------------------------------
def _carrier(source: Mapping[str, Any]) -> dict[str, str] | None:
    """The W3C context entries of a ``_meta`` object or header map; None when there is no traceparent."""
    if not isinstance(source.get("traceparent"), str):
        return None
    return {key: value for key in _CONTEXT_KEYS if isinstance(value := source.get(key), str)}


def parent_context(meta: Any, headers: Mapping[str, str] | None) -> tuple[Context | None, list[Link] | None]:
    """The parent of a request's span, and links to any other context that arrived with it.

    ``_meta`` wins (both eras; on stdio it is the only carrier); the HTTP ``traceparent`` header
    is the parent only when ``_meta`` has none, and otherwise a link (the transport's context
    and the MCP request's are independent: one request may take several HTTP attempts).
    """
    from_meta = _carrier(meta) if isinstance(meta, dict) and "traceparent" in meta else None
    from_http = _carrier(headers) if headers is not None and "traceparent" in headers else None
    if from_meta is None:
        return (_PROPAGATOR.extract(from_http) if from_http is not None else None), None
    parent = _PROPAGATOR.extract(from_meta)
    if from_http is None:
        return parent, None
    transport = trace.get_current_span(_PROPAGATOR.extract(from_http)).get_span_context()
    return parent, ([Link(transport)] if transport.is_valid else None)


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
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


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
