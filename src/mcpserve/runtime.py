"""Composition root: settings + an MCPServer → a dispatcher and a running transport.

Every runtime policy is wired here and nowhere else.
"""

from __future__ import annotations

import logging
import sys
from typing import IO, Any

import anyio

from mcpserve.config import Settings, load_settings
from mcpserve.config_checks import is_loopback
from mcpserve.errors import ConfigError
from mcpserve.observability.logs import configure_logging as configure_json_logging
from mcpserve.observability.logs import get_logger
from mcpserve.observability.metrics import Metrics
from mcpserve.observability.requests import RequestObserver
from mcpserve.protocol.sealing import KeyRing
from mcpserve.server.app import MCPServer
from mcpserve.server.dispatch import CacheHint, Dispatcher
from mcpserve.server.readiness import run_checks
from mcpserve.store.memory import MemoryEventStore, MemorySessionStore
from mcpserve.transports.http.app import HttpApp
from mcpserve.transports.http.cors import CorsPolicy
from mcpserve.transports.http.drain import Drain
from mcpserve.transports.http.endpoint import EndpointOptions, McpEndpoint
from mcpserve.transports.http.hostguard import HostGuard
from mcpserve.transports.http.ops import MetricsAccess, OpsRoutes

__all__ = ["build_dispatcher", "build_http_app", "check", "configure_logging", "run_stdio", "serve"]

# Binds whose Host values the loopback default already covers (or, for 0.0.0.0 and ::, cannot name).
_LOOPBACK_OR_ANY = ("127.0.0.1", "localhost", "::1", "0.0.0.0", "::")  # noqa: S104 - names, not binds

logger = logging.getLogger("mcpserve")


def _keyring(settings: Settings) -> KeyRing:
    if not settings.request_state_keys:
        return KeyRing.ephemeral()
    try:
        return KeyRing.from_strings([key.get_secret_value() for key in settings.request_state_keys])
    except ValueError as exc:
        raise ConfigError("MCPSERVE_REQUEST_STATE_KEYS", str(exc)) from None


def build_dispatcher(server: MCPServer, settings: Settings) -> Dispatcher:
    lists = CacheHint(settings.list_ttl_ms, "public")
    return Dispatcher(
        server,
        keyring=_keyring(settings),
        request_state_ttl=settings.request_state_ttl,
        tool_timeout=settings.tool_timeout,
        cache_hints={
            m: lists for m in ("tools/list", "prompts/list", "resources/list", "resources/templates/list")
        },
    )


def build_http_app(server: MCPServer, settings: Settings) -> HttpApp:
    """The ASGI app: endpoint, state stores and the Host/Origin policy, all from settings."""
    hosts = list(settings.allowed_hosts)
    if not hosts and settings.host not in _LOOPBACK_OR_ANY:
        # Bound to a specific address: accept it as Host too, besides the loopback names.
        hosts = ["localhost", "127.0.0.1", "[::1]", settings.host]
    # An origin allowed to call from a browser must also pass the DNS-rebinding Origin check.
    origins = [*settings.allowed_origins, *settings.cors_origins]
    guard = HostGuard(hosts, origins, settings.trusted_proxies)
    sessions = MemorySessionStore(
        idle_timeout=settings.session_idle_timeout, max_sessions=settings.max_sessions
    )
    endpoint = McpEndpoint(
        build_dispatcher(server, settings),
        sessions=sessions,
        events=MemoryEventStore(),
        guard=guard,
        options=EndpointOptions(max_body_bytes=settings.max_body_bytes),
    )
    metrics = Metrics()

    async def count_sessions() -> None:
        metrics.active_sessions.set(await sessions.count())

    metrics.before_scrape(count_sessions)
    drain = Drain()
    metrics.in_flight.set_function(lambda: drain.in_flight)
    on_main_port = settings.metrics_port is None
    ops = OpsRoutes(
        checks=server.readiness_checks,
        sessions=sessions,
        drain=drain,
        metrics=metrics,
        metrics_access=MetricsAccess(settings.metrics_allow, guard) if on_main_port else None,
        serve_metrics=on_main_port,
    )
    return HttpApp(
        endpoint,
        settings.path,
        ops=ops,
        observer=RequestObserver(metrics, server),
        cors=CorsPolicy(settings.cors_origins) if settings.cors_origins else None,
        drain=drain,
    )


def configure_logging(settings: Settings, stream: IO[bytes] | None = None) -> None:
    """JSON lines on stderr only (on stdio, stdout belongs to the protocol), then the effective
    configuration, secrets redacted, as the first line."""
    configure_json_logging(settings.log_level, stream)
    get_logger("mcpserve").info("configuration", config=settings.redacted())
    if settings.auth == "none" and settings.transport == "http" and not is_loopback(settings.host):
        logger.warning("serving %s without authentication (MCPSERVE_AUTH=none)", settings.host)


def check(server: MCPServer, settings: Settings) -> dict[str, Any]:
    """Build everything ``serve`` would, run startup hooks and every readiness check, serve nothing.

    Raises :class:`ConfigError` for settings that only fail when wired (e.g. sealing keys).
    """
    build_dispatcher(server, settings)
    app = build_http_app(server, settings) if settings.transport == "http" else None

    async def main() -> dict[str, Any]:
        try:
            async with server.lifespan():
                if app is not None:
                    return (await app.ops.readiness())[1]
                results = await run_checks(server.readiness_checks)
                ready = all(value == "ok" for value in results.values())
                return {"status": "ready" if ready else "not ready", "checks": results}
        except Exception as exc:
            return {"status": "not ready", "startup": f"{type(exc).__name__}: {exc}"[:200]}

    return anyio.run(main)


def run_stdio(server: MCPServer, settings: Settings) -> None:
    from mcpserve.transports.stdio import serve_stdio  # noqa: PLC0415 - only this transport needs it

    dispatcher = build_dispatcher(server, settings)
    if not settings.request_state_keys:
        logger.info("requestState keys are ephemeral (set MCPSERVE_REQUEST_STATE_KEYS to share them)")

    async def main() -> None:
        async with server.lifespan():
            await serve_stdio(
                dispatcher, sys.stdin.buffer, sys.stdout.buffer, max_line_bytes=settings.max_body_bytes
            )

    anyio.run(main)


def serve(
    server: MCPServer, *, transport: str = "stdio", settings: Settings | None = None, **overrides: Any
) -> None:
    """Run ``server`` with validated settings on the chosen transport."""
    settings = settings or load_settings({"transport": transport, **overrides})
    configure_logging(settings)
    if settings.transport == "stdio":
        run_stdio(server, settings)
        return
    from mcpserve.transports.http.serve import run_http  # noqa: PLC0415 - optional heavy imports

    run_http(build_http_app(server, settings), settings)
