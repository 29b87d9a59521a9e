"""Operational routes: ``/health`` (liveness), ``/ready`` (readiness) and ``/metrics``.

``/health`` touches no dependency: it answers while the process serves. ``/ready`` runs every
registered readiness check plus the session store and answers 503 with the reasons when a
critical one fails (200 ``degraded`` when only non-critical ones do), or at once with
``draining`` once shutdown has begun. ``/metrics`` is served either on
its own port (``MCPSERVE_METRICS_PORT``) or on the main port to clients inside
``MCPSERVE_METRICS_ALLOW`` only. The operator console (``/admin``, see mcpserve.admin) is
served by the same listener as ``/metrics``, with its own access rules.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from typing import Any

from mcpserve.observability.metrics import CONTENT_TYPE, Metrics
from mcpserve.server.readiness import readiness_report, run_checks
from mcpserve.store.base import SessionStore
from mcpserve.transports.http.drain import Drain
from mcpserve.transports.http.hostguard import HostGuard
from mcpserve.transports.http.stream import Send, json_response

__all__ = ["MetricsAccess", "OpsRoutes", "OpsApp", "OPS_PATHS", "is_admin_path"]

OPS_PATHS = frozenset({"/health", "/ready", "/metrics"})
AdminHandler = Callable[[dict[str, Any], Send], Awaitable[None]]


def is_admin_path(path: str) -> bool:
    return path == "/admin" or path.startswith("/admin/")


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


class MetricsAccess:
    """Who may read ``/metrics`` on the main port: the client's address must be in ``allow``.

    The client is the socket peer, or, when the peer is a trusted proxy, the nearest address in
    ``X-Forwarded-For`` that is not itself a trusted proxy.
    """

    def __init__(self, allow: Iterable[str], guard: HostGuard) -> None:
        self.networks: tuple[Network, ...] = tuple(ipaddress.ip_network(n, strict=False) for n in allow)
        self.guard = guard

    def client(self, scope: dict[str, Any]) -> str | None:
        peer = scope.get("client")
        address = str(peer[0]) if peer else None
        if not self.guard.trusts(address):
            return address
        forwarded: list[str] = [v.decode("latin-1") for k, v in scope["headers"] if k == b"x-forwarded-for"]
        hops = [hop.strip() for value in forwarded for hop in value.split(",") if hop.strip()]
        for hop in reversed(hops):
            if not self.guard.trusts(hop):
                return hop
        return address

    def permits(self, scope: dict[str, Any]) -> bool:
        client = self.client(scope)
        address = _address(client) if client else None
        return address is not None and any(address in network for network in self.networks)


class OpsRoutes:
    """Answers the operational paths for one listener."""

    def __init__(
        self,
        *,
        checks: Mapping[str, Callable[[], Awaitable[None]]],
        sessions: SessionStore,
        drain: Drain,
        metrics: Metrics | None = None,
        metrics_access: MetricsAccess | None = None,
        serve_metrics: bool = True,
        noncritical: Collection[str] = frozenset(),
        admin: AdminHandler | None = None,
        serve_admin: bool = True,
    ) -> None:
        self.checks = checks  # the server's live dict: checks registered at startup still count
        self.noncritical = noncritical  # likewise live: names whose failure only degrades
        self.sessions = sessions
        self.drain = drain
        self.metrics = metrics
        self.metrics_access = metrics_access
        self.serve_metrics = serve_metrics and metrics is not None
        self.admin = admin
        self.serve_admin = serve_admin and admin is not None

    def unrestricted(self) -> OpsRoutes:
        """The same routes for a listener of their own (MCPSERVE_METRICS_PORT): the port is the
        boundary, so /metrics has no address allowlist there."""
        return OpsRoutes(
            checks=self.checks,
            sessions=self.sessions,
            drain=self.drain,
            metrics=self.metrics,
            noncritical=self.noncritical,
            admin=self.admin,
        )

    async def readiness(self) -> tuple[int, dict[str, Any]]:
        if self.drain.stopping:
            return 503, {"status": "draining"}
        results = await run_checks({"sessions": self.sessions.count, **self.checks})
        report = readiness_report(results, self.noncritical)
        return (200 if report["status"] == "ready" else 503), report

    async def __call__(self, scope: dict[str, Any], send: Send) -> None:
        path = scope["path"]
        if self.serve_admin and self.admin is not None and is_admin_path(path):
            await self.admin(scope, send)
        elif scope["method"] not in ("GET", "HEAD"):
            await json_response(send, 405, {"error": "method not allowed"}, [(b"allow", b"GET, HEAD")])
        elif path == "/health":
            await json_response(send, 200, {"status": "ok"}, [(b"cache-control", b"no-store")])
        elif path == "/ready":
            status, body = await self.readiness()
            await json_response(send, status, body, [(b"cache-control", b"no-store")])
        elif path == "/metrics" and self.serve_metrics and self.metrics is not None:
            if self.metrics_access is not None and not self.metrics_access.permits(scope):
                await json_response(send, 403, {"error": "forbidden"}, [])
                return
            payload = await self.metrics.render()
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", CONTENT_TYPE.encode()),
                        (b"content-length", str(len(payload)).encode()),
                        (b"cache-control", b"no-store"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": payload})
        else:
            await json_response(send, 404, {"error": "not found"}, [])


class OpsApp:
    """The ASGI app of the separate metrics listener: operational routes only, no lifespan."""

    def __init__(self, routes: OpsRoutes) -> None:
        self.routes = routes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Send) -> None:
        if scope["type"] == "http":
            await self.routes(scope, send)
