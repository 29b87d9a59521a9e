"""What the console shows, gathered from the running parts; the JSON API returns it as it is and
the page renders it.

Nothing here is on the request path: it runs when an operator opens the page or the page polls.
Rates are the change between this answer and an earlier one (the page polls every few seconds);
per-tool latency quantiles come from the histograms, since the process started.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from mcpserve._version import __version__
from mcpserve.admin.figures import read_registry
from mcpserve.config import Settings
from mcpserve.errors import StoreUnavailable
from mcpserve.observability.metrics import Metrics
from mcpserve.observability.recent import LIMITED_WINDOW, RecentActivity
from mcpserve.principal import Principal
from mcpserve.ratelimit import RateGate
from mcpserve.server.app import MCPServer
from mcpserve.server.tools import Tool
from mcpserve.transports.http.ops import OpsRoutes

__all__ = ["Console", "ConsoleParts"]

# Rates compare with the oldest kept sample at least this old, and at most RATE_HORIZON old.
_MIN_RATE_SPAN: Final = 1.0
_RATE_HORIZON: Final = 60.0


@dataclass(slots=True, frozen=True)
class ConsoleParts:
    """The running parts the console reads (built by runtime.py)."""

    settings: Settings
    server: MCPServer
    metrics: Metrics
    ops: OpsRoutes
    recent: RecentActivity
    auth_methods: frozenset[str]
    rate_gate: RateGate | None
    timeout_for: Callable[[Tool], float | None]


def _rate(now: float, total: int, samples: deque[tuple[float, int, int]], index: int) -> float | None:
    for at, *counts in samples:
        if _MIN_RATE_SPAN <= now - at <= _RATE_HORIZON:
            return max(0.0, (total - counts[index]) / (now - at))
    return None


class Console:
    def __init__(self, parts: ConsoleParts, clock: Callable[[], float] = time.monotonic) -> None:
        self.parts = parts
        self._clock = clock
        self.started = clock()
        self.started_wall = time.time()
        self._samples: deque[tuple[float, int, int]] = deque(maxlen=120)

    def identity(self, viewer: Principal | None) -> dict[str, Any]:
        p = self.parts
        s = p.settings
        return {
            "server": p.server.name,
            "server_version": p.server.version,
            "mcpserve_version": __version__,
            "transport": "streamable-http",
            "endpoint": s.path,
            "listen": f"{s.host}:{s.port}",
            "console_listen": f"{s.host}:{s.metrics_port}" if s.metrics_port else f"{s.host}:{s.port}",
            "authentication": sorted(p.auth_methods) or ["none"],
            "viewer": viewer.name if viewer is not None else "local (authentication off)",
            "pid": os.getpid(),
        }

    async def readiness(self) -> dict[str, Any]:
        status, report = await self.parts.ops.readiness()
        noncritical = self.parts.ops.noncritical
        checks = {
            name: {"result": result, "critical": name not in noncritical}
            for name, result in report.get("checks", {}).items()
        }
        return {
            "status": report["status"],
            "http_status": status,
            "degraded": bool(report.get("degraded")),
            "draining": self.parts.ops.drain.draining,
            "checks": checks,
        }

    def tools(self, sampled_tools: dict[str, Any]) -> list[dict[str, Any]]:
        p = self.parts
        limits = p.rate_gate.tools if p.rate_gate is not None else {}
        rows = []
        names = [*p.server.tool_names(), *(["unknown"] if "unknown" in sampled_tools else [])]
        for name in names:
            tool = p.server.registered_tool(name)
            figures = sampled_tools.get(name)
            limit = limits.get(name)
            rows.append(
                {
                    "name": name,
                    "registered": tool is not None,
                    "scopes": sorted(tool.scopes) if tool is not None else [],
                    "timeout_seconds": p.timeout_for(tool) if tool is not None else None,
                    "limits": (
                        {
                            "per_minute": limit.per_minute,
                            "per_hour": limit.per_hour,
                            "concurrency": limit.concurrency,
                        }
                        if limit is not None
                        else None
                    ),
                    "calls": figures.calls if figures is not None else 0,
                    "errors": figures.errors if figures is not None else 0,
                    "refused": figures.refused if figures is not None else 0,
                    "p50_seconds": figures.quantile(0.5) if figures is not None else None,
                    "p99_seconds": figures.quantile(0.99) if figures is not None else None,
                }
            )
        return rows

    def rate_limits(self, refusals: int) -> dict[str, Any]:
        gate, s = self.parts.rate_gate, self.parts.settings
        return {
            "enabled": gate is not None,
            "backend": ("redis" if s.redis_url is not None else "memory") if gate is not None else None,
            "per_minute": gate.per_minute if gate is not None else 0,
            "per_hour": gate.per_hour if gate is not None else 0,
            "refusals_total": refusals,
            "limited_window_seconds": LIMITED_WINDOW,
            "limited_principals": self.parts.recent.currently_limited(),
        }

    async def overview(self, viewer: Principal | None) -> dict[str, Any]:
        p = self.parts
        sampled = read_registry(p.metrics.registry)
        now = self._clock()
        requests_per_second = _rate(now, sampled.requests, self._samples, 0)
        errors_per_second = _rate(now, sampled.errors, self._samples, 1)
        self._samples.append((now, sampled.requests, sampled.errors))
        while self._samples and now - self._samples[0][0] > _RATE_HORIZON:
            self._samples.popleft()
        drain = p.ops.drain
        return {
            "identity": self.identity(viewer),
            "uptime_seconds": round(now - self.started, 3),
            "started_at": self.started_wall,
            "readiness": await self.readiness(),
            "traffic": {
                "requests_total": sampled.requests,
                "errors_total": sampled.errors,
                "requests_per_second": requests_per_second,
                "errors_per_second": errors_per_second,
            },
            "sessions": {
                "active": await self._active_sessions(),
                "max": p.settings.max_sessions,
                "idle_timeout_seconds": p.settings.session_idle_timeout,
            },
            "in_flight": {
                "requests": drain.in_flight,
                "sse_streams": int(_gauge(p.metrics, "mcp_sse_streams_open")),
            },
            "tools": self.tools(sampled.tools),
            "rate_limits": self.rate_limits(sampled.rate_limited),
            "recent_errors": p.recent.recent_errors(),
        }

    async def _active_sessions(self) -> int | None:
        """None while the session store cannot be reached (readiness shows why)."""
        try:
            return await self.parts.ops.sessions.count()
        except StoreUnavailable:
            return None

    def configuration(self) -> dict[str, Any]:
        return self.parts.settings.redacted()


def _gauge(metrics: Metrics, name: str) -> float:
    value = metrics.registry.get_sample_value(name)
    return value if value is not None else 0.0
