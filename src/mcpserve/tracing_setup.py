"""Build the tracer provider from settings: sampler, exporter, batch processor, resource.

Part of the composition root (beside :mod:`mcpserve.runtime`): ``observability/`` itself never
reads settings. When tracing is on, :func:`configure_tracing` installs one SDK tracer provider for
the process (so tool code that uses ``opentelemetry.trace.get_tracer`` joins the same traces),
exporting over OTLP/HTTP (``docs/tracing.md``).
"""

from __future__ import annotations

import sys
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)

from mcpserve._version import __version__
from mcpserve.config import Settings, parse_key_values
from mcpserve.errors import ConfigError
from mcpserve.observability.tracing import PresetIds, RootSampling

__all__ = ["build_sampler", "build_tracer_provider", "configure_tracing", "root_sampling"]


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
