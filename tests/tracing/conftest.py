"""One tracer provider for in-process tracing tests, installed as the process's provider.

The OpenTelemetry API takes a global provider once per process, as a server process does at
start. It is the provider mcpserve builds (request spans made by its own code, not the SDK's
tracer), exporting nowhere; tests read what it recorded from an in-memory exporter, emptied
before each test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from mcpserve.config import load_settings
from mcpserve.tracing_setup import build_tracer_provider

_EXPORTER = InMemorySpanExporter()


_INSTALLED: list[TracerProvider] = []


def _install() -> None:
    if _INSTALLED:
        return
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):  # the usual case: nothing installed one yet
        provider = build_tracer_provider(load_settings({"auth": "none", "otel_traces_exporter": "none"}))
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
    _INSTALLED.append(provider)


class Recorded:
    """The spans finished since the test began."""

    def all(self) -> list[ReadableSpan]:
        return list(_EXPORTER.get_finished_spans())

    def named(self, name: str) -> ReadableSpan:
        found = [span for span in self.all() if span.name == name]
        assert len(found) == 1, [span.name for span in self.all()]
        return found[0]


@pytest.fixture
def spans() -> Iterator[Recorded]:
    _install()
    _EXPORTER.clear()
    yield Recorded()
    _EXPORTER.clear()
