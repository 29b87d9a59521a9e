"""OpenTelemetry tracing: the tracer provider built from settings, and trace context across MCP.

Off by default (``MCPSERVE_TRACING``). When it is off nothing here runs: the runtime composes
the untraced dispatcher and limiter, and logging adds no processor. When it is on,
:func:`configure_tracing` installs one SDK tracer provider for the process (so tool code that
uses ``opentelemetry.trace.get_tracer`` joins the same traces), exporting over OTLP/HTTP.

Trace context crosses MCP in ``params._meta`` (``traceparent``, ``tracestate``, ``baggage``,
unprefixed, SEP-414): the only way a trace reaches a stdio server. :func:`parent_context` reads
it (and the HTTP ``traceparent`` header), :func:`inject_meta` writes it into requests we send.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from random import getrandbits
from typing import Any, Final

from opentelemetry import trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from mcpserve._version import __version__
from mcpserve.config import Settings, parse_key_values
from mcpserve.errors import ConfigError

__all__ = [
    "TRACER_NAME",
    "add_trace_ids",
    "failed",
    "operation_span",
    "build_sampler",
    "build_tracer_provider",
    "configure_tracing",
    "inject_meta",
    "parent_context",
    "PresetIds",
    "RootSampling",
    "root_sampling",
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
    """A tracer of the process-wide provider (a proxy until :func:`configure_tracing` runs)."""
    return trace.get_tracer(name, __version__)


# -- the provider -----------------------------------------------------------------------------
def build_sampler(settings: Settings) -> Sampler:
    """``OTEL_TRACES_SAMPLER`` / ``OTEL_TRACES_SAMPLER_ARG`` as the specification names them."""
    name = settings.otel_traces_sampler
    root: Sampler
    if name.endswith("always_on"):
        root = ALWAYS_ON
    elif name.endswith("always_off"):
        root = ALWAYS_OFF
    else:
        root = TraceIdRatioBased(settings.otel_traces_sampler_arg)
    return ParentBased(root) if name.startswith("parentbased_") else root


def _traces_endpoint(settings: Settings) -> str:
    if settings.otel_exporter_otlp_traces_endpoint is not None:
        return settings.otel_exporter_otlp_traces_endpoint
    return settings.otel_exporter_otlp_endpoint.rstrip("/") + "/v1/traces"


def _exporter(settings: Settings) -> SpanExporter | None:
    if settings.otel_traces_exporter == "none":
        return None
    if settings.otel_traces_exporter == "console":
        # stdout as it is now (the SDK's default is the one at its import): for trying tracing out
        # over HTTP, never with stdio, whose stdout carries the protocol.
        return ConsoleSpanExporter(out=sys.stdout)
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
            OTLPSpanExporter,
        )
    except ImportError:
        raise ConfigError(
            "OTEL_TRACES_EXPORTER",
            "the OTLP exporter is not installed: pip install 'mcpserve[otlp]' "
            "(or set OTEL_TRACES_EXPORTER=console or none)",
        ) from None
    headers = settings.otel_exporter_otlp_headers
    return OTLPSpanExporter(
        endpoint=_traces_endpoint(settings),
        headers=parse_key_values(headers.get_secret_value(), "headers") if headers is not None else {},
        timeout=settings.otel_exporter_otlp_timeout / 1000,
    )


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


class RootSampling:
    """The sampling decision for a request that arrived without trace context, made before any span.

    Requests left out (most of them at a low ratio) then cost a random number, a comparison and
    a bare span context (so tool code's spans and outgoing requests still follow the unsampled
    trace) instead of the SDK's sampler and span start. The rule is the SDK's ratio sampler's,
    on the same bits of the trace id, so the span the SDK then starts gets the same verdict.
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
        span_id = getrandbits(64) or 1
        return trace.NonRecordingSpan(trace.SpanContext(trace_id, span_id, False, _UNSAMPLED))

    def forget(self) -> None:
        """Drop a preset id the SDK did not take (it does whenever it starts a new trace)."""
        self._ids.preset(None)


def root_sampling(settings: Settings) -> RootSampling | None:
    """Early decisions for root requests, when the installed provider is ours and samples a ratio."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider) or not isinstance(provider.id_generator, PresetIds):
        return None
    name = settings.otel_traces_sampler
    if name.endswith("always_on"):
        return None  # every request is sampled: nothing to decide early
    ratio = 0.0 if name.endswith("always_off") else settings.otel_traces_sampler_arg
    return RootSampling(ratio, provider.id_generator)


def build_tracer_provider(settings: Settings) -> TracerProvider:
    """The SDK provider ``settings`` describe; every value passed in, none read from the environment."""
    attributes: dict[str, Any] = dict(settings.otel_resource_attributes)
    attributes["service.name"] = settings.otel_service_name
    attributes.setdefault("service.version", __version__)
    provider = TracerProvider(
        sampler=build_sampler(settings), resource=Resource(attributes), id_generator=PresetIds()
    )
    exporter = _exporter(settings)
    if exporter is not None:
        provider.add_span_processor(
            BatchSpanProcessor(
                exporter,
                max_queue_size=settings.otel_bsp_max_queue_size,
                schedule_delay_millis=settings.otel_bsp_schedule_delay,
                max_export_batch_size=min(
                    settings.otel_bsp_max_export_batch_size, settings.otel_bsp_max_queue_size
                ),
                export_timeout_millis=settings.otel_bsp_export_timeout,
            )
        )
    return provider


def configure_tracing(settings: Settings) -> TracerProvider | None:
    """Install the process's tracer provider when tracing is on; spans are flushed at exit."""
    if not settings.tracing_enabled:
        return None
    provider = build_tracer_provider(settings)
    trace.set_tracer_provider(provider)
    return provider


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
    from_meta = _carrier(meta) if isinstance(meta, dict) else None
    from_http = _carrier(headers) if headers is not None else None
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
