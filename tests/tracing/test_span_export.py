"""The span processor and the OTLP/HTTP exporter: batches, a bounded buffer, retries, counts."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, TraceFlags
from prometheus_client import CollectorRegistry, generate_latest

from mcpserve.observability.span_export import BufferedSpanProcessor, OtlpHttpExporter, SpanExportCollector
from tests.support.threaded import threaded_http

SCOPE = InstrumentationScope("tests")
RESOURCE = Resource({"service.name": "export-tests"})


def _span(number: int, sampled: bool = True) -> ReadableSpan:
    context = SpanContext(number + 1, number + 1, False, TraceFlags(TraceFlags.SAMPLED if sampled else 0))
    return ReadableSpan(
        f"span {number}", context, resource=RESOURCE, instrumentation_scope=SCOPE, start_time=1, end_time=2
    )


class Recorder:
    """An export function that records its batches; ``gate`` holds every export until it is set."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.exported = threading.Event()
        self.entered = threading.Event()

    def __call__(self, spans: Sequence[ReadableSpan]) -> bool:
        self.entered.set()
        assert self.gate.wait(10)
        self.batches.append([span.name for span in spans])
        self.exported.set()
        return True


def test_a_full_batch_leaves_at_once_and_the_rest_at_the_flush() -> None:
    export = Recorder()
    processor = BufferedSpanProcessor(export, max_export_batch_size=3, delay_seconds=3600)
    for number in range(4):
        processor.on_end(_span(number))
    processor.on_end(_span(9, sampled=False))  # not sampled: never exported
    assert export.exported.wait(10)  # the timer is an hour away: the full batch woke the thread
    assert processor.force_flush(10_000)
    assert export.batches == [["span 0", "span 1", "span 2"], ["span 3"]]
    processor.shutdown()
    assert processor.counts.exported == 4


def test_beyond_the_buffer_new_spans_are_dropped_and_counted_as_a_metric() -> None:
    export = Recorder()
    export.gate.clear()
    processor = BufferedSpanProcessor(export, max_queue_size=4, max_export_batch_size=2, delay_seconds=3600)
    processor.on_end(_span(0))
    processor.on_end(_span(1))  # a full batch: the thread takes both and waits in the export
    assert export.entered.wait(10)
    for number in range(2, 9):
        processor.on_end(_span(number))  # 4 fit in the buffer, 3 are dropped
    registry = CollectorRegistry()
    registry.register(SpanExportCollector(processor.counts))
    assert b"mcp_trace_spans_dropped_total 3.0" in generate_latest(registry)
    export.gate.set()
    processor.shutdown()  # the buffered spans still leave before the thread ends
    assert [name for batch in export.batches for name in batch] == [f"span {n}" for n in range(6)]
    scraped = generate_latest(registry)
    assert b"mcp_trace_spans_exported_total 6.0" in scraped
    assert b"mcp_trace_spans_failed_total 0.0" in scraped


def _collector(statuses: list[int]) -> tuple[type[BaseHTTPRequestHandler], list[ExportTraceServiceRequest]]:
    """A collector answering ``statuses`` in turn (then 200), keeping what it decoded."""
    received: list[ExportTraceServiceRequest] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            status = statuses.pop(0) if statuses else 200
            if status == 200:
                received.append(ExportTraceServiceRequest.FromString(body))
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return None

    return Handler, received


def test_the_exporter_retries_what_the_collector_may_take_later() -> None:
    handler, received = _collector([503, 429])
    with threaded_http(handler) as url:
        exporter = OtlpHttpExporter(url + "/v1/traces", {"x-api-key": "k" * 20}, timeout=5, budget=30)
        assert exporter([_span(1), _span(2)])
        exporter.close()
    (request,) = received
    assert [span.name for span in request.resource_spans[0].scope_spans[0].spans] == ["span 1", "span 2"]


def test_a_refused_batch_is_given_up_and_logged_without_headers(caplog: pytest.LogCaptureFixture) -> None:
    key = "secret-" + "s" * 20
    handler, received = _collector([400])
    with threaded_http(handler) as url, caplog.at_level(logging.WARNING):
        exporter = OtlpHttpExporter(url + "/v1/traces", {"x-api-key": key}, timeout=5, budget=30)
        processor = BufferedSpanProcessor(exporter, delay_seconds=3600, after_last=exporter.close)
        processor.on_end(_span(1))
        assert processor.force_flush(10_000)
        processor.shutdown()
    assert received == []  # 400: not worth retrying
    assert processor.counts.failed == 1 and processor.counts.exported == 0
    assert "1 spans not exported" in caplog.text and "HTTP 400" in caplog.text
    assert key not in caplog.text


def test_at_shutdown_an_unreachable_collector_gets_one_attempt() -> None:
    handler, _ = _collector([])
    with threaded_http(handler) as url:
        gone = url  # the collector stops before the export
    exporter = OtlpHttpExporter(gone + "/v1/traces", {}, timeout=2, budget=3600)
    processor = BufferedSpanProcessor(
        exporter, delay_seconds=3600, before_last=exporter.last_attempts, after_last=exporter.close
    )
    processor.on_end(_span(1))
    processor.shutdown()  # with retries this would take the hour-long budget
    assert processor.counts.failed == 1
