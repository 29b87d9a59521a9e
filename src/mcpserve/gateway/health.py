"""Each upstream's state in ``/ready`` and in metrics.

One non-critical readiness check per upstream (a failed one degrades readiness, never fails it),
and one critical check that fails only when every upstream has failed: a gateway with nothing to
serve is not ready, and one serving nothing at all never reports healthy.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

if TYPE_CHECKING:
    from mcpserve.gateway.upstream import Upstream
    from mcpserve.server.app import MCPServer

__all__ = ["register_health", "upstream_state", "ALL_UPSTREAMS_CHECK"]

ALL_UPSTREAMS_CHECK = "upstreams"


def _upstreams(server: MCPServer) -> list[Upstream]:
    from mcpserve.gateway.upstream import Upstream  # noqa: PLC0415 - upstream imports this module

    return [u for u in server.mounts.values() if isinstance(u, Upstream)]


def upstream_state(upstream: Upstream) -> tuple[str, str | None]:
    """``(state, reason)``: starting, ready, restarting, failed, or idle (pooled, no child running)."""
    assert upstream.pool is not None
    children = list(upstream.pool.children.values())
    if not children:
        listed = upstream.catalogue.tools or upstream.catalogue.resources or upstream.catalogue.prompts
        return ("idle", None) if listed else ("starting", "not listed yet")
    states = {s.state for s in children}
    for state in ("ready", "restarting", "starting", "failed"):
        if state in states:
            reason = next((s.reason for s in children if s.state == state), None)
            return state, reason
    return "stopped", None


def register_health(server: MCPServer, upstream: Upstream) -> None:
    async def check() -> None:
        state, reason = upstream_state(upstream)
        if state not in ("ready", "idle"):
            raise RuntimeError(f"{state}: {reason}" if reason else state)
        catalogue = upstream.catalogue
        if not (catalogue.tools or catalogue.resources or catalogue.templates or catalogue.prompts):
            raise RuntimeError("ready, but serves no tools, resources or prompts")

    server.add_readiness_check(f"upstream:{upstream.name}", check, critical=False)
    if ALL_UPSTREAMS_CHECK not in server.readiness_checks:
        server.add_readiness_check(ALL_UPSTREAMS_CHECK, _all_failed_check(server))
        server.add_metrics_collector(GatewayCollector(server))


def _all_failed_check(server: MCPServer) -> Any:
    async def check() -> None:
        states = [upstream_state(u)[0] for u in _upstreams(server)]
        if states and all(state == "failed" for state in states):
            raise RuntimeError(f"all {len(states)} upstreams failed")

    return check


class GatewayCollector:
    """Upstream series, read from the supervisors at scrape time."""

    def __init__(self, server: MCPServer) -> None:
        self.server = server

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "mcp_upstream_up", "1 when the upstream is ready to serve.", labels=["upstream"]
        )
        children = GaugeMetricFamily(
            "mcp_upstream_children", "Upstream child processes or sessions.", labels=["upstream"]
        )
        restarts = CounterMetricFamily(
            "mcp_upstream_restarts", "Upstream restarts after a crash.", labels=["upstream"]
        )
        calls = CounterMetricFamily(
            "mcp_upstream_calls", "Tool calls forwarded to the upstream.", labels=["upstream"]
        )
        tools = GaugeMetricFamily("mcp_upstream_tools", "Tools the upstream serves.", labels=["upstream"])
        for upstream in _upstreams(self.server):
            assert upstream.pool is not None
            state, _ = upstream_state(upstream)
            up.add_metric([upstream.name], 1.0 if state in ("ready", "idle") else 0.0)
            children.add_metric([upstream.name], float(len(upstream.pool.children)))
            restarts.add_metric(
                [upstream.name], float(sum(s.restarts for s in upstream.pool.children.values()))
            )
            calls.add_metric([upstream.name], float(upstream.calls))
            tools.add_metric([upstream.name], float(len(upstream.catalogue.tools)))
        yield from (up, children, restarts, calls, tools)
