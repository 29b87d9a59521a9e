"""Figures read back from the metrics registry, so the console shows what ``/metrics`` exports.

Quantiles are estimated from histogram buckets the way PromQL's ``histogram_quantile`` does
(linear within the bucket), over everything observed since the process started.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from prometheus_client.registry import CollectorRegistry

__all__ = ["Sampled", "ToolFigures", "quantile", "read_registry"]


@dataclass(slots=True)
class ToolFigures:
    calls: int = 0
    errors: int = 0  # calls that ran and failed, or never ran for a reason other than a rate limit
    refused: int = 0  # calls refused by a rate limit
    # (upper bound, cumulative count), in bound order, +Inf last
    buckets: list[tuple[float, float]] = field(default_factory=list)

    def quantile(self, q: float) -> float | None:
        return quantile(q, self.buckets)


@dataclass(slots=True)
class Sampled:
    """The counters the console shows, as /metrics would render them at this moment."""

    requests: int = 0
    errors: int = 0  # requests that did not succeed, rate-limit refusals aside
    rate_limited: int = 0
    tools: dict[str, ToolFigures] = field(default_factory=lambda: defaultdict(ToolFigures))


def quantile(q: float, buckets: Iterable[tuple[float, float]]) -> float | None:
    ordered = list(buckets)
    if not ordered or ordered[-1][1] == 0:
        return None
    rank = q * ordered[-1][1]
    lower, below = 0.0, 0.0
    for bound, cumulative in ordered:
        if cumulative >= rank:
            if math.isinf(bound):
                return lower  # beyond the last finite bound: report that bound, as PromQL does
            if cumulative == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (cumulative - below)
        lower, below = bound, cumulative
    return lower  # pragma: no cover - the +Inf bucket always holds every observation


def read_registry(registry: CollectorRegistry) -> Sampled:
    sampled = Sampled()
    for family in registry.collect():
        for sample in family.samples:
            name, labels, value = sample.name, sample.labels, sample.value
            if name == "mcp_requests_total":
                sampled.requests += int(value)
            elif name == "mcp_server_operation_duration_seconds_count" and labels["error_type"] not in (
                "",
                "rate_limited",
            ):
                sampled.errors += int(value)
            elif name == "mcp_rate_limited_calls_total":
                sampled.rate_limited += int(value)
            elif name == "mcp_tool_calls_total":
                tool = sampled.tools[labels["tool"]]
                tool.calls += int(value)
                if labels["status"] == "rate_limited":
                    tool.refused += int(value)
                elif labels["status"] != "success":
                    tool.errors += int(value)
            elif name == "mcp_tool_call_duration_seconds_bucket":
                sampled.tools[labels["tool"]].buckets.append((float(labels["le"]), value))
    return sampled
