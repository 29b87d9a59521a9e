"""Build the tracer provider from settings: sampler, exporter, span processor, resource.

Part of the composition root (beside :mod:`mcpserve.runtime`): ``observability/`` itself never
reads settings. When tracing is on, :func:`configure_tracing` installs one SDK tracer provider for
the process (so tool code that uses ``opentelemetry.trace.get_tracer`` joins the same traces),
exporting over OTLP/HTTP (``docs/tracing.md``). Request spans are started beside the SDK's tracer
(:class:`~mcpserve.observability.tracing.ServerSpans`), on the provider's resource, sampler rule
and span processors; spans leave through mcpserve's own processor and OTLP encoder
(:mod:`mcpserve.observability.span_export`).
"""

from __future__ import annotations

import sys
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SynchronousMultiSpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from mcpserve._version import __version__
from mcpserve.config import Settings, parse_key_values
from mcpserve.observability.span_export import (
    BufferedSpanProcessor,
    ExportCounts,
    OtlpHttpExporter,
    SpanExportCollector,
)
from mcpserve.observability.tracing import TRACER_NAME, Sampling, SdkServerSpans, ServerSpans, tracer

__all__ = [
    "Provider",
    "build_sampler",
    "build_tracer_provider",
    "configure_tracing",
    "export_collector",
    "server_spans",
]


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


def build_sampling(settings: Settings) -> Sampling:
    """The early decision for request spans: the same rule as :func:`build_sampler`'s sampler."""
    name = settings.otel_traces_sampler
    ratio = settings.otel_traces_sampler_arg
    if name.endswith("always_on"):
        ratio = 1.0
    elif name.endswith("always_off"):
        ratio = 0.0
    return Sampling(ratio, parent_based=name.startswith("parentbased_"))


class Provider(TracerProvider):
    """The SDK provider mcpserve installs, holding what request spans and the exporter need.

    Its span processors are one ``SynchronousMultiSpanProcessor`` made here, so request spans
    reach the same processors as the SDK's spans (one added later with ``add_span_processor``
    included); ``export_counts`` are the exporting processor's counts (None without one).
    """

    def __init__(self, settings: Settings, resource: Resource) -> None:
        processors = SynchronousMultiSpanProcessor()  # type: ignore[no-untyped-call]
        super().__init__(sampler=build_sampler(settings), resource=resource, active_span_processor=processors)
        scope = InstrumentationScope(TRACER_NAME, __version__)
        self.server_spans = ServerSpans(build_sampling(settings), processors, resource, scope)
        self.export_counts: ExportCounts | None = None


def _exporting_processor(settings: Settings) -> BufferedSpanProcessor | None:
    """The processor that sends spans where ``OTEL_TRACES_EXPORTER`` says; None for ``none``."""
    if settings.otel_traces_exporter == "none":
        return None
    options: dict[str, Any] = {
        "max_queue_size": settings.otel_bsp_max_queue_size,
        "max_export_batch_size": settings.otel_bsp_max_export_batch_size,
        "delay_seconds": settings.otel_bsp_schedule_delay / 1000,
    }
    if settings.otel_traces_exporter == "console":
        # stdout as it is now (the SDK's default is the one at its import): for trying tracing out
        # over HTTP, never with stdio, whose stdout carries the protocol.
        console = ConsoleSpanExporter(out=sys.stdout)
        return BufferedSpanProcessor(
            lambda spans: console.export(spans) is SpanExportResult.SUCCESS, **options
        )
    headers = settings.otel_exporter_otlp_headers
    exporter = OtlpHttpExporter(
        _traces_endpoint(settings),
        parse_key_values(headers.get_secret_value(), "headers") if headers is not None else {},
        timeout=settings.otel_exporter_otlp_timeout / 1000,
        budget=settings.otel_bsp_export_timeout / 1000,
    )
    return BufferedSpanProcessor(
        exporter, before_last=exporter.last_attempts, after_last=exporter.close, **options
    )


def build_tracer_provider(settings: Settings) -> Provider:
    """The SDK provider ``settings`` describe; every value passed in, none read from the environment."""
    attributes: dict[str, Any] = dict(settings.otel_resource_attributes)
    attributes["service.name"] = settings.otel_service_name
    attributes.setdefault("service.version", __version__)
    provider = Provider(settings, Resource(attributes))
    processor = _exporting_processor(settings)
    if processor is not None:
        provider.add_span_processor(processor)
        provider.export_counts = processor.counts
    return provider


def server_spans() -> ServerSpans | SdkServerSpans:
    """What starts request spans: mcpserve's own on its provider, else the installed provider's tracer."""
    provider = trace.get_tracer_provider()
    if isinstance(provider, Provider):
        return provider.server_spans
    return SdkServerSpans(tracer())


def export_collector() -> SpanExportCollector | None:
    """The exporter's counts as metrics, when the installed provider is mcpserve's and exports."""
    provider = trace.get_tracer_provider()
    if isinstance(provider, Provider) and provider.export_counts is not None:
        return SpanExportCollector(provider.export_counts)
    return None


def configure_tracing(settings: Settings) -> Provider | None:
    """Install the process's tracer provider when tracing is on; spans are flushed at exit."""
    if not settings.tracing_enabled:
        return None
    provider = build_tracer_provider(settings)
    trace.set_tracer_provider(provider)
    return provider
