"""Run the HTTP app on uvicorn (uvloop + httptools), owning the signals for a graceful drain.

uvicorn's own handling waits for open connections *before* the app hears of shutdown, so an
open SSE stream would hold the process forever (and uvicorn re-raises the signal afterwards,
turning a clean stop into death by SIGTERM). Instead, the first SIGTERM/SIGINT starts the drain:

1. readiness answers 503 ``draining``; new sessions, 2026-07-28 requests and GET streams get
   503 with a JSON-RPC -31000 error and ``Retry-After``; requests on existing sessions still run;
2. ``subscriptions/listen`` streams end with their final result, GET streams close;
3. requests in flight get until ``MCPSERVE_DRAIN_TIMEOUT`` seconds to finish; calls still
   running then are cut off, each answering 503 / -31000 (or that error as the last event of
   its SSE stream);
4. uvicorn stops listening, closes idle connections, runs lifespan shutdown, and the process
   exits 0, also after a cut-off: the stop was requested and every request got an answer.

A second signal exits at once with status 128 + the signal number.

With ``MCPSERVE_TLS_CERT_FILE`` the main port serves HTTPS; SIGHUP, or a change of the files,
reloads the certificate for new connections without dropping open ones (see tls.py). The
metrics port stays plain HTTP (probes and Prometheus inside the cluster).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import signal
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any, Literal

import uvicorn

from mcpserve.config import Settings
from mcpserve.errors import ConfigError, StartupError
from mcpserve.transports.http.app import HttpApp
from mcpserve.transports.http.ops import OpsApp
from mcpserve.transports.http.protocol import CoalescingHttpToolsProtocol
from mcpserve.transports.http.tls import ReloadingTls
from mcpserve.urls import http_url

__all__ = ["run_http", "serve_http"]

logger = logging.getLogger("mcpserve.http")
# After the drain, uvicorn still closes connections and runs lifespan shutdown; allow that this long.
_CLOSE_GRACE = 1


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to :func:`serve_http`."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        # uvicorn exits the process when the application's startup fails; stop serving instead
        # (started stays False), so run_http reports what failed in one line.
        try:
            await super().startup(sockets=sockets)
        except SystemExit:
            self.should_exit = True
        if self.started:  # uvicorn says where it listens only on sockets it bound itself
            where = http_url(
                self.config.host, self.config.port, scheme="https" if self.config.ssl else "http"
            )
            logger.info("listening on %s (Ctrl-C or SIGTERM drains and stops)", where)


def _config(
    app: Callable[..., Any],
    settings: Settings,
    port: int,
    *,
    lifespan: Literal["on", "off"],
    tls: ReloadingTls | None = None,
) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=settings.host,
        port=port,
        loop="uvloop",
        http=CoalescingHttpToolsProtocol,  # httptools, a response's head and body in one write
        # MCP has no WebSocket transport: an Upgrade request is served as the plain HTTP request
        # it also is (the endpoint's own error) rather than a handshake the app never completes (500).
        ws="none",
        lifespan=lifespan,
        access_log=False,
        log_config=None,  # our JSON logging is already configured; uvicorn's loggers propagate to it
        log_level=settings.log_level,
        timeout_graceful_shutdown=_CLOSE_GRACE,
        server_header=False,
        # X-Forwarded-* are honoured by HostGuard, and only from MCPSERVE_TRUSTED_PROXIES.
        proxy_headers=False,
        # Our context, not one uvicorn builds: the same object is reloaded in place.
        ssl_context_factory=(lambda _config, _default: tls.context) if tls is not None else None,
    )


def _listen(host: str, port: int, variable: str) -> socket.socket:
    """Bind before the app starts: a port in use is a one-line start-up error (exit 2), not an
    application that started up for nothing and then failed."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host.strip("[]"), port), family=family, backlog=2048)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(variable, f"{host}:{port} is already in use; choose another port") from None
        raise ConfigError("MCPSERVE_HOST", f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def _listeners(host: str, port: int, metrics_port: int | None) -> list[socket.socket]:
    """The main port's socket, then the metrics port's if it has one; none left open on failure."""
    listening = [_listen(host, port, "MCPSERVE_PORT")]
    if metrics_port is not None:
        try:
            listening.append(_listen(host, metrics_port, "MCPSERVE_METRICS_PORT"))
        except ConfigError:
            listening[0].close()
            raise
    return listening


def _tls(settings: Settings) -> ReloadingTls | None:
    if settings.tls_cert_file is None or settings.tls_key_file is None:
        return None
    return ReloadingTls(settings.tls_cert_file, settings.tls_key_file, settings.tls_client_ca_file)


def _metrics_listener(app: HttpApp, settings: Settings) -> _Server | None:
    if settings.metrics_port is None:
        return None
    return _Server(_config(OpsApp(app.ops.unrestricted()), settings, settings.metrics_port, lifespan="off"))


async def serve_http(app: HttpApp, settings: Settings, tls: ReloadingTls | None = None) -> bool:
    """Serve until drained after a signal; False if the app failed to start."""
    main = _Server(_config(app, settings, settings.port, lifespan="on", tls=tls))
    servers = [main]
    extra = _metrics_listener(app, settings)
    if extra is not None:
        servers.append(extra)
    listening = _listeners(settings.host, settings.port, settings.metrics_port)
    loop = asyncio.get_running_loop()
    drain_task: asyncio.Task[None] | None = None

    async def drain() -> None:
        started = time.monotonic()
        logger.info("draining: %d request(s) in flight", app.drain.in_flight)
        app.begin_drain()
        if await app.drain.wait_idle(settings.drain_timeout):
            logger.info("drained in %.3f s", time.monotonic() - started)
        else:
            in_flight = app.drain.in_flight
            cut_off = app.endpoint.cut_off()  # each stopped call answers 503 / -31000
            await app.drain.wait_idle(_CLOSE_GRACE)  # let those answers go out
            logger.warning(
                "drain deadline of %g s passed: %d request(s) in flight, %d call(s) cut off "
                "with 503; stopped after %.3f s",
                settings.drain_timeout,
                in_flight,
                cut_off,
                time.monotonic() - started,
            )
        for server in servers:
            server.should_exit = True

    def on_signal(signum: int) -> None:
        nonlocal drain_task
        if drain_task is not None:
            logger.warning("second %s: exiting at once", signal.Signals(signum).name)
            os._exit(128 + signum)
        logger.info("%s received: starting graceful drain", signal.Signals(signum).name)
        drain_task = loop.create_task(drain())

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)

    async def serve_main() -> None:
        try:
            await main.serve(sockets=listening[:1])
        finally:  # the metrics listener lives exactly as long as the main one
            for server in servers[1:]:
                server.should_exit = True

    try:
        with tls.reloading(loop) if tls is not None else contextlib.nullcontext():
            await asyncio.gather(
                serve_main(), *(server.serve(sockets=listening[1:]) for server in servers[1:])
            )
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        for listener in listening:  # uvicorn closes them only after a start-up that succeeded
            listener.close()
    return main.started


def run_http(app: HttpApp, settings: Settings) -> None:
    tls = _tls(settings)  # a certificate that does not load stops the start (ConfigError, exit 2)
    config = _config(app, settings, settings.port, lifespan="on")
    with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
        started = runner.run(serve_http(app, settings, tls))
    if not started:
        raise StartupError(app.startup_failure or "the application did not start (see the log above)")
