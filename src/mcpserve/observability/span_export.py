"""Finished spans leave the process in batches, off the requests' path.

:class:`BufferedSpanProcessor` replaces the SDK's ``BatchSpanProcessor``: a request hands its
finished span over with one append to a deque (the SDK's processor takes a lock and checks
its state for each span), and a background thread exports what has gathered every
``delay`` seconds, or as soon as a batch is full. The buffer is bounded: beyond it the newest
spans are dropped and counted (``mcp_trace_spans_dropped_total``), so a slow or absent
collector never slows or fails a request. :class:`OtlpHttpExporter` posts the batches,
encoded by :mod:`mcpserve.observability.otlp`, to an OTLP/HTTP endpoint.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Final

import httpx
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.trace import TraceFlags
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from mcpserve.observability.otlp import encode_spans
from mcpserve.observability.tracing import ServerSpan

__all__ = ["BufferedSpanProcessor", "ExportCounts", "OtlpHttpExporter", "SpanExportCollector"]

_log = logging.getLogger(__name__)

Export = Callable[[Sequence[ReadableSpan]], bool]
# Statuses a collector answers when it may take the batch later (OTLP/HTTP specification).
_RETRYABLE: Final = frozenset({429, 502, 503, 504})


class ExportCounts:
    """What happened to finished spans: exported, dropped at a full buffer, lost in failed exports."""

    def __init__(self) -> None:
        self.exported = 0
        self.dropped = 0
        self.failed = 0


class BufferedSpanProcessor(SpanProcessor):
    """Sampled spans into a bounded buffer; a thread exports it in batches on a timer or when full."""

    def __init__(
        self,
        export: Export,
        *,
        max_queue_size: int = 2048,
        max_export_batch_size: int = 512,
        delay_seconds: float = 5.0,
        before_last: Callable[[], None] | None = None,
        after_last: Callable[[], None] | None = None,
    ) -> None:
        self._export = export
        self._limit = max_queue_size
        self._batch = min(max_export_batch_size, max_queue_size)
        self._delay = delay_seconds
        self._before_last, self._after_last = before_last, after_last  # the exporter's, at shutdown
        self.counts = ExportCounts()
        self._spans: deque[ReadableSpan] = deque()
        self._wake = threading.Event()  # a full batch, a flush or shutdown: export now
        self._rounds = threading.Condition()
        self._started = self._ended = 0  # export rounds, for force_flush to wait on
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="mcpserve-span-export", daemon=True)
        self._thread.start()

    # -- the requests' side (on_start is the base class's: nothing, and request spans skip it) ----
    def on_end(self, span: ReadableSpan) -> None:
        if type(span) is not ServerSpan:  # a request's recorded span is sampled by construction
            context = span.context
            if context is None or not context.trace_flags & TraceFlags.SAMPLED:
                return
        spans = self._spans
        if len(spans) >= self._limit:  # a few more under a race between threads: still bounded
            self.counts.dropped += 1
            return
        spans.append(span)  # a deque: appends and the export thread's pops need no lock
        if len(spans) == self._batch:
            self._wake.set()

    # -- the export thread ----------------------------------------------------------------
    def _take(self) -> list[ReadableSpan]:
        with self._rounds:
            self._started += 1
        buffered, pop = self._spans, self._spans.popleft
        return [pop() for _ in range(len(buffered))]

    def _send(self, spans: list[ReadableSpan]) -> None:
        for start in range(0, len(spans), self._batch):
            batch = spans[start : start + self._batch]
            try:
                sent = self._export(batch)
            except Exception:  # an exporter bug must not end the thread: the next batch may go
                _log.exception("span export failed")
                sent = False
            if sent:
                self.counts.exported += len(batch)
            else:
                self.counts.failed += len(batch)

    def _run(self) -> None:
        while True:
            self._wake.wait(self._delay)
            self._wake.clear()
            stopping = self._stopping
            self._send(self._take())
            with self._rounds:
                self._ended += 1
                self._rounds.notify_all()
            if stopping:
                return

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Export what is buffered now; False if that did not finish within the timeout."""
        if not self._thread.is_alive():
            return False
        with self._rounds:
            # The next round to start takes every span ended before this call; it starts at
            # once (a round under way now clears the wake-up before counting itself started).
            target = self._started + 1
            self._wake.set()
            return self._rounds.wait_for(lambda: self._ended >= target, timeout_millis / 1000)

    def shutdown(self) -> None:
        """Export what is left, then stop the thread (at exit: the provider calls this)."""
        if self._thread.is_alive():
            if self._before_last is not None:
                self._before_last()
            self._stopping = True
            self._wake.set()
            self._thread.join()
        if self._after_last is not None:
            self._after_last()


class OtlpHttpExporter:
    """POSTs batches of spans as OTLP protobuf to a collector's ``/v1/traces``.

    Each POST waits ``timeout`` seconds at most. A failed export is retried, with growing pauses,
    while the collector says it may take the batch later (429, 502, 503, 504) or cannot be
    reached, for ``budget`` seconds in all; then the batch is given up and logged. At shutdown
    (:meth:`last_attempts`) a batch gets one POST, so a collector that does not answer delays
    the exit by ``timeout`` at most. Headers (often an API key) are never logged.
    """

    def __init__(self, endpoint: str, headers: Mapping[str, str], timeout: float, budget: float) -> None:
        self._endpoint = endpoint
        self._timeout = timeout
        self._budget = budget
        self._client = httpx.Client(headers={**headers, "content-type": "application/x-protobuf"})
        self._last = threading.Event()

    def __call__(self, spans: Sequence[ReadableSpan]) -> bool:
        body = encode_spans(spans)
        deadline = time.monotonic() + self._budget
        pause = 0.5
        while True:
            problem = self._post(body, min(self._timeout, max(deadline - time.monotonic(), 0.001)))
            if problem is None:
                return True
            retry, reason = problem
            if not retry or time.monotonic() + pause >= deadline or self._last.is_set():
                _log.warning("%d spans not exported to %s: %s", len(spans), self._endpoint, reason)
                return False
            self._last.wait(pause)  # returns early at shutdown
            pause *= 2

    def _post(self, body: bytes, timeout: float) -> tuple[bool, str] | None:
        """None when the collector took the batch; else (worth retrying, what went wrong)."""
        try:
            answer = self._client.post(self._endpoint, content=body, timeout=timeout)
        except httpx.HTTPError as exc:
            return True, type(exc).__name__
        if answer.is_success:
            return None
        return answer.status_code in _RETRYABLE, f"HTTP {answer.status_code}"

    def last_attempts(self) -> None:
        """From now on one POST per batch: the process is exiting."""
        self._last.set()

    def close(self) -> None:
        self._client.close()


class SpanExportCollector(Collector):
    """The processor's counts as Prometheus counters, in the app's registry."""

    def __init__(self, counts: ExportCounts) -> None:
        self._counts = counts

    def collect(self) -> Iterator[Metric]:
        counts = self._counts
        for name, help_text, value in (
            ("mcp_trace_spans_exported", "Sampled spans sent to the trace collector.", counts.exported),
            (
                "mcp_trace_spans_dropped",
                "Sampled spans dropped because the export buffer was full (OTEL_BSP_MAX_QUEUE_SIZE).",
                counts.dropped,
            ),
            (
                "mcp_trace_spans_failed",
                "Sampled spans lost because the collector refused them or could not be reached.",
                counts.failed,
            ),
        ):
            yield CounterMetricFamily(name, help_text, value=value)
