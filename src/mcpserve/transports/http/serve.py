"""Run the HTTP app on uvicorn (uvloop + httptools). The app itself is wired in mcpserve.runtime."""

from __future__ import annotations

import uvicorn

from mcpserve.config import Settings
from mcpserve.transports.http.app import HttpApp

__all__ = ["run_http"]


def run_http(app: HttpApp, settings: Settings) -> None:
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
