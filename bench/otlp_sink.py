"""Where the traced mcpserve sends its spans during a benchmark: an OTLP/HTTP endpoint that
accepts every export and keeps only counts, so exporting costs the server what it would cost
against a real collector on the same machine (encoding, one HTTP request per batch)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bench.servers import HOST


@dataclass
class SinkCounts:
    url: str
    exports: int = 0
    bytes: int = 0
    spans: int = 0


def _span_count(body: bytes) -> int:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (  # noqa: PLC0415
        ExportTraceServiceRequest,
    )

    request = ExportTraceServiceRequest.FromString(body)
    return sum(len(scoped.spans) for resource in request.resource_spans for scoped in resource.scope_spans)


@contextmanager
def otlp_sink() -> Iterator[SinkCounts]:
    counts = SinkCounts("")
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a collector serves the exporter

        def do_POST(self) -> None:
            size = int(self.headers.get("content-length", "0"))
            spans = _span_count(self.rfile.read(size))
            with lock:
                counts.exports += 1
                counts.bytes += size
                counts.spans += spans
            # An empty body is a valid (empty) ExportTraceServiceResponse.
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer((HOST, 0), Handler)
    counts.url = f"http://{HOST}:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield counts
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
