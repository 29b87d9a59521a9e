"""Prometheus metrics in an app-owned registry (never the process-global default).

One registry per HTTP app, so tests and several apps in one process never share counts. Label
values come from closed sets (known methods, registered tools, fixed statuses), so a client
cannot create new series by sending made-up names.

mcpserve runs one server process per port (scale out with replicas), so plain single-process
collectors are exact; there is no multi-worker mode to aggregate.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["Metrics", "CONTENT_TYPE", "TOOL_BUCKETS"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
# Tool latency spans cached lookups (ms) to slow upstreams (tens of seconds, up to the tool timeout).
TOOL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    """Every metric the runtime exports, with the few operations that update them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.tool_calls = Counter(
            "mcp_tool_calls", "Tool calls by tool and outcome.", ["tool", "status"], registry=r
        )
        self.tool_duration = Histogram(
            "mcp_tool_call_duration_seconds",
            "Time spent running a tool call, by tool.",
            ["tool"],
            buckets=TOOL_BUCKETS,
            registry=r,
        )
        self.active_sessions = Gauge(
            "mcp_active_sessions", "Live 2025-era sessions in the session store.", registry=r
        )
        self.requests = Counter(
            "mcp_requests",
            "Requests to the MCP endpoint by JSON-RPC method, protocol era and HTTP status.",
            ["method", "era", "status"],
            registry=r,
        )
        self.in_flight = Gauge("mcp_requests_in_flight", "MCP endpoint requests being served.", registry=r)
        self.sse_streams = Gauge("mcp_sse_streams_open", "Responses currently streaming SSE.", registry=r)
        self.rate_limited = Counter(
            "mcp_rate_limit_rejections",
            "Requests refused by a rate limit, by limit scope.",
            ["scope"],
            registry=r,
        )
        self.auth_failures = Counter(
            "mcp_auth_failures", "Requests refused by authentication, by reason.", ["reason"], registry=r
        )
        self._scrape_hooks: list[Callable[[], Awaitable[None]]] = []
        self._tool_call_counts: dict[tuple[str, str], int] = {}
        self._tool_durations: dict[str, Histogram] = {}
        self._request_counts: dict[tuple[str, str, int], int] = {}

    # Counted per request as plain integers and added to the Prometheus children at scrape time:
    # a child's inc() takes a lock and costs more than the rest of the bookkeeping together.
    def tool_call(self, tool: str, status: str, seconds: float) -> None:
        key = (tool, status)
        self._tool_call_counts[key] = self._tool_call_counts.get(key, 0) + 1
        duration = self._tool_durations.get(tool)
        if duration is None:
            duration = self._tool_durations[tool] = self.tool_duration.labels(tool)
        duration.observe(seconds)

    def request(self, method: str, era: str, status: int) -> None:
        key = (method, era, status)
        self._request_counts[key] = self._request_counts.get(key, 0) + 1

    def _add_counts(self) -> None:
        counts, self._request_counts = self._request_counts, {}
        for (method, era, code), count in counts.items():
            self.requests.labels(method, era, str(code)).inc(count)
        tool_counts, self._tool_call_counts = self._tool_call_counts, {}
        for (tool, outcome), count in tool_counts.items():
            self.tool_calls.labels(tool, outcome).inc(count)

    def rate_limit_rejection(self, scope: str) -> None:
        self.rate_limited.labels(scope).inc()

    def auth_failure(self, reason: str) -> None:
        self.auth_failures.labels(reason).inc()

    def before_scrape(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Run ``hook`` before each scrape: for values that are cheaper to read than to track."""
        self._scrape_hooks.append(hook)

    async def render(self) -> bytes:
        for hook in self._scrape_hooks:
            await hook()
        self._add_counts()
        return generate_latest(self.registry)
