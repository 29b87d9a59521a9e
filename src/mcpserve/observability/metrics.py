"""Prometheus metrics in an app-owned registry (never the process-global default).

One registry per HTTP app, so tests and several apps in one process never share counts. Label
values come from closed sets (known methods, registered tools, fixed statuses), so a client
cannot create new series by sending made-up names.

mcpserve runs one server process per port (scale out with replicas), so plain single-process
collectors are exact; there is no multi-worker mode to aggregate.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

__all__ = ["Metrics", "CONTENT_TYPE", "TOOL_BUCKETS", "OPERATION_BUCKETS", "SESSION_BUCKETS"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
# Tool latency spans cached lookups (ms) to slow upstreams (tens of seconds, up to the tool timeout).
TOOL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# The boundaries the OpenTelemetry MCP semantic conventions advise for mcp.server.operation.duration.
OPERATION_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
# Distinct principals named in labels; later ones share "other" (bounded series).
MAX_PRINCIPAL_LABELS = 50
# Sessions live from seconds (one tool call) to a working day.
SESSION_BUCKETS = (1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0, 86400.0)


def _histogram(
    family: HistogramMetricFamily,
    bounds: tuple[float, ...],
    series: dict[Any, tuple[list[int], list[float]]],
    labels: Callable[[Any], list[str]],
) -> HistogramMetricFamily:
    """Fill ``family`` from per-bucket counts (the last one +Inf) kept as plain numbers."""
    names = [*map(floatToGoString, bounds), "+Inf"]
    for key, (counts, total) in series.items():
        cumulative, running = [], 0
        for bound, count in zip(names, counts, strict=True):
            running += count
            cumulative.append((bound, float(running)))
        family.add_metric(labels(key), cumulative, sum_value=total[0])
    return family


class _PerRequest(Collector):
    """The series every request updates, kept as plain numbers and rendered at scrape time.

    Updating a prometheus-client child takes a lock per increment (a histogram observation,
    two); a request would pay for four of them. Requests finish on the event loop, which is
    also where scrapes render, so no lock is needed here.
    """

    def __init__(self, network_transport: str) -> None:
        self.network_transport = network_transport
        # (method, era, status, tool, error type) -> (count per operation bucket, the last one
        # +Inf; sum of seconds): one entry per kind of request feeds both mcp_requests_total and
        # mcp_server_operation_duration_seconds, so a request is recorded with one lookup.
        self.requests: dict[tuple[str, str, int, str, str], tuple[list[int], list[float]]] = {}
        self.tool_calls: dict[tuple[str, str], int] = {}
        # tool -> (count per tool bucket, the last one +Inf; sum of seconds)
        self.durations: dict[str, tuple[list[int], list[float]]] = {}

    def tool_call(self, tool: str, status: str, seconds: float) -> None:
        key = (tool, status)
        self.tool_calls[key] = self.tool_calls.get(key, 0) + 1
        found = self.durations.get(tool)
        if found is None:
            found = self.durations[tool] = ([0] * (len(TOOL_BUCKETS) + 1), [0.0])
        found[0][bisect_left(TOOL_BUCKETS, seconds)] += 1  # bucket i counts seconds <= bound i
        found[1][0] += seconds

    def tool_refusal(self, tool: str, status: str) -> None:
        key = (tool, status)
        self.tool_calls[key] = self.tool_calls.get(key, 0) + 1

    def request(self, method: str, era: str, status: int, tool: str, error_type: str, seconds: float) -> None:
        key = (method, era, status, tool, error_type)
        found = self.requests.get(key)
        if found is None:
            found = self.requests[key] = ([0] * (len(OPERATION_BUCKETS) + 1), [0.0])
        found[0][bisect_left(OPERATION_BUCKETS, seconds)] += 1
        found[1][0] += seconds

    def operations(self) -> dict[tuple[str, str, str], tuple[list[int], list[float]]]:
        """The operation histogram's series: the request entries merged over era and status."""
        merged: dict[tuple[str, str, str], tuple[list[int], list[float]]] = {}
        for (method, _, _, tool, error_type), (counts, total) in self.requests.items():
            key = (method, tool, error_type)
            found = merged.get(key)
            if found is None:
                merged[key] = (list(counts), [total[0]])
            else:
                found[0][:] = [a + b for a, b in zip(found[0], counts, strict=True)]
                found[1][0] += total[0]
        return merged

    def collect(self) -> Iterator[Metric]:
        calls = CounterMetricFamily(
            "mcp_tool_calls", "Tool calls by tool and outcome.", labels=["tool", "status"]
        )
        for (tool, outcome), count in self.tool_calls.items():
            calls.add_metric([tool, outcome], count)
        yield calls
        yield _histogram(
            HistogramMetricFamily(
                "mcp_tool_call_duration_seconds", "Time spent running a tool call, by tool.", labels=["tool"]
            ),
            TOOL_BUCKETS,
            self.durations,
            lambda tool: [tool],
        )
        transport = self.network_transport
        yield _histogram(
            HistogramMetricFamily(
                "mcp_server_operation_duration_seconds",
                "Time to answer an MCP request (OpenTelemetry MCP semantic conventions).",
                labels=["mcp_method_name", "gen_ai_tool_name", "error_type", "network_transport"],
            ),
            OPERATION_BUCKETS,
            self.operations(),
            lambda key: [*key, transport],
        )
        requests: dict[tuple[str, str, int], int] = {}
        for (method, era, code, _, _), (counts, _) in self.requests.items():
            requests[method, era, code] = requests.get((method, era, code), 0) + sum(counts)
        family = CounterMetricFamily(
            "mcp_requests",
            "Requests to the MCP endpoint by JSON-RPC method, protocol era and HTTP status.",
            labels=["method", "era", "status"],
        )
        for (method, era, code), count in requests.items():
            family.add_metric([method, era, str(code)], count)
        yield family


class Metrics:
    """Every metric the runtime exports, with the few operations that update them."""

    def __init__(self, network_transport: str = "tcp") -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._per_request = _PerRequest(network_transport)
        r.register(self._per_request)
        # Called for every request: bound straight to the collector, no delegating call between.
        self.tool_call = self._per_request.tool_call
        self.request = self._per_request.request
        self.session_duration = Histogram(
            "mcp_server_session_duration_seconds",
            "Lifetime of ended 2025-era sessions (deleted by the client or expired idle).",
            ["network_transport"],
            buckets=SESSION_BUCKETS,
            registry=r,
        ).labels(network_transport)
        self.active_sessions = Gauge(
            "mcp_active_sessions", "Live 2025-era sessions in the session store.", registry=r
        )
        self.in_flight = Gauge("mcp_requests_in_flight", "MCP endpoint requests being served.", registry=r)
        self.sse_streams = Gauge("mcp_sse_streams_open", "Responses currently streaming SSE.", registry=r)
        self.rate_limited = Counter(
            "mcp_rate_limit_rejections",
            "Requests refused by a rate limit, by limit scope.",
            ["scope"],
            registry=r,
        )
        self.rate_limited_calls = Counter(
            "mcp_rate_limited_calls",
            "Tool calls refused by a rate limit, by principal (the first few; later ones as "
            "'other') and tool.",
            ["principal", "tool"],
            registry=r,
        )
        self._limited_principals: set[str] = set()
        self.auth_failures = Counter(
            "mcp_auth_failures", "Requests refused by authentication, by reason.", ["reason"], registry=r
        )
        self.ready = Gauge(
            "mcp_ready", "1 while /ready answers 200 (ready or degraded), 0 otherwise.", registry=r
        )
        self.readiness_check = Gauge(
            "mcp_readiness_check_up",
            "1 while a readiness check passes, by check (redis: the rate limiter's Redis).",
            ["check"],
            registry=r,
        )
        self.draining = Gauge("mcp_draining", "1 once shutdown has begun (draining), else 0.", registry=r)
        self.build_info = Gauge(
            "mcp_build_info", "Always 1; the labels name the build.", ["version", "server"], registry=r
        )
        # process_start_time_seconds (restarts), CPU and memory of this process.
        ProcessCollector(registry=r)
        self._scrape_hooks: list[Callable[[], Awaitable[None]]] = []

    def tool_refusal(self, tool: str, status: str) -> None:
        """A tool call refused before it ran (e.g. ``rate_limited``): no duration to observe."""
        self._per_request.tool_refusal(tool, status)

    def rate_limit_rejection(self, scope: str) -> None:
        self.rate_limited.labels(scope).inc()

    def rate_limited_call(self, principal: str | None, tool: str) -> None:
        """A call refused by a rate limit. Principals are open-ended (OAuth subjects), so only the
        first MAX_PRINCIPAL_LABELS become label values."""
        who = principal or "anonymous"
        if who not in self._limited_principals:
            if len(self._limited_principals) >= MAX_PRINCIPAL_LABELS:
                who = "other"
            else:
                self._limited_principals.add(who)
        self.rate_limited_calls.labels(who, tool).inc()

    def auth_failure(self, reason: str) -> None:
        self.auth_failures.labels(reason).inc()

    def readiness(self, ready: bool, checks: dict[str, str]) -> None:
        """Record a readiness report: ``checks`` maps each check to "ok" or its reason."""
        self.ready.set(1 if ready else 0)
        for name, result in checks.items():
            self.readiness_check.labels(name).set(1 if result == "ok" else 0)

    def before_scrape(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Run ``hook`` before each scrape: for values that are cheaper to read than to track."""
        self._scrape_hooks.append(hook)

    async def render(self) -> bytes:
        for hook in self._scrape_hooks:
            await hook()
        return generate_latest(self.registry)
