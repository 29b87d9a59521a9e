"""Build the HTTP app from settings and run it on uvicorn (uvloop + httptools)."""

from __future__ import annotations

import uvicorn

from mcpserve.config import Settings
from mcpserve.server.app import MCPServer
from mcpserve.store.memory import MemoryEventStore, MemorySessionStore
from mcpserve.transports.http.app import HttpApp
from mcpserve.transports.http.endpoint import EndpointOptions, McpEndpoint
from mcpserve.transports.http.hostguard import HostGuard

__all__ = ["build_http_app", "run_http"]


def build_http_app(server: MCPServer, settings: Settings) -> HttpApp:
    from mcpserve.runtime import build_dispatcher  # noqa: PLC0415 - runtime imports this module lazily

    dispatcher = build_dispatcher(server, settings)
    hosts = list(settings.allowed_hosts)
    if not hosts and settings.host not in ("127.0.0.1", "localhost", "::1", "0.0.0.0", "::"):  # noqa: S104
        hosts = ["localhost", "127.0.0.1", "[::1]", settings.host]
    endpoint = McpEndpoint(
        dispatcher,
        sessions=MemorySessionStore(
            idle_timeout=settings.session_idle_timeout, max_sessions=settings.max_sessions
        ),
        events=MemoryEventStore(),
        guard=HostGuard(hosts, settings.allowed_origins, settings.trusted_proxies),
        options=EndpointOptions(max_body_bytes=settings.max_body_bytes),
    )
    return HttpApp(endpoint, settings.path)


def run_http(server: MCPServer, settings: Settings) -> None:
    app = build_http_app(server, settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level=settings.log_level,
        timeout_graceful_shutdown=30,
        server_header=False,
        # X-Forwarded-* are honoured by HostGuard, and only from MCPSERVE_TRUSTED_PROXIES.
        proxy_headers=False,
    )
    uvicorn.Server(config).run()
