"""Run the HTTP app on uvicorn (uvloop + httptools), owning the signals for a graceful drain.

uvicorn's own handling waits for open connections *before* the app hears of shutdown, so an
open SSE stream would hold the process forever (and uvicorn re-raises the signal afterwards,
turning a clean stop into death by SIGTERM). Instead, the first SIGTERM/SIGINT starts the drain,
built so that a proxy in front never hands a client a 503:

1. readiness answers 503 ``draining``; after SIGTERM, requests are still served normally for
   ``MCPSERVE_DRAIN_DELAY`` seconds while load balancers take the replica out;
2. the listening socket closes, so a proxy's new connections are refused (and retried on
   another replica) instead of answered 503; every keep-alive connection's next response head
   says ``Connection: close`` (one whose head is already out stays open for one more answer,
   see ``close_after_response``); only what cannot be handed over (a new 2025-era
   session, a new GET stream) is refused with 503 and -31000, before any tool runs;
3. ``subscriptions/listen`` streams end with their final result, GET streams close with a
   ``retry`` hint;
4. requests in flight get until ``MCPSERVE_DRAIN_TIMEOUT`` seconds to finish; calls still
   running then are cut off, each answering 503 / -31000 (or that error as the last event of
   its SSE stream);
5. uvicorn closes what is still open, runs lifespan shutdown, and the process exits 0, also
   after a cut-off: the stop was requested and every request got an answer.

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
from mcpserve.transports.http.connections import ConnectionLimits, default_max_connections
from mcpserve.transports.http.detached import DetachedStream
from mcpserve.transports.http.ops import OpsApp
from mcpserve.transports.http.protocol import CoalescingHttpToolsProtocol, limited
from mcpserve.transports.http.tls import ReloadingTls
from mcpserve.urls import http_url

__all__ = ["run_http", "serve_http"]

logger = logging.getLogger("mcpserve.http")
# After the drain, uvicorn still closes connections and runs lifespan shutdown; allow that this long.
_CLOSE_GRACE = 1
_HANDSHAKE = 10  # seconds a connection taken from the backlog at shutdown has for its TLS handshake


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


def connection_limits(settings: Settings) -> ConnectionLimits:
    return ConnectionLimits(
        max_header_bytes=settings.max_header_bytes,
        header_timeout=settings.header_timeout,
        body_timeout=settings.body_timeout,
        max_connections=settings.max_connections or default_max_connections(),
    )


def _config(
    app: Callable[..., Any],
    settings: Settings,
    port: int,
    *,
    lifespan: Literal["on", "off"],
    limits: ConnectionLimits | None = None,
    tls: ReloadingTls | None = None,
) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=settings.host,
        port=port,
        loop="uvloop",
        # httptools, a response's head and body in one write, the connection limits enforced
        http=limited(limits or connection_limits(settings)),
        timeout_keep_alive=settings.keepalive_timeout,  # type: ignore[arg-type]
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


def _metrics_listener(app: HttpApp, settings: Settings, limits: ConnectionLimits) -> _Server | None:
    if settings.metrics_port is None:
        return None
    ops = OpsApp(app.ops.unrestricted())
    return _Server(_config(ops, settings, settings.metrics_port, lifespan="off", limits=limits))


async def _stop_accepting(server: uvicorn.Server, listener: socket.socket) -> None:
    """Close the listening sockets (a proxy's next connection is refused, so it tries another
    replica) and have every open connection's next response head say ``Connection: close``.

    Connections the kernel has completed but the server has not accepted yet (the listener's
    backlog) are taken first and served: closing a listener resets them, and a proxy that has
    already sent a POST on one cannot retry it (nginx answers 502).
    """
    servers = getattr(server, "servers", ())  # absent only if the signal beat startup
    waiting = _backlog(listener) if servers else []
    for listening in servers:
        listening.close()
    if waiting:
        await _serve_accepted(server, waiting)
    for connection in list(server.server_state.connections):
        if isinstance(connection, CoalescingHttpToolsProtocol | DetachedStream):
            connection.close_after_response()


def _backlog(listener: socket.socket) -> list[socket.socket]:
    """Every connection waiting in ``listener``'s accept queue."""
    listener.setblocking(False)  # as the event loop has it already: an accept here never waits
    waiting: list[socket.socket] = []
    while True:
        try:
            connection, _ = listener.accept()
        except OSError:  # none left; or out of descriptors, and what is left is reset as before
            return waiting
        waiting.append(connection)


async def _serve_accepted(server: uvicorn.Server, connections: list[socket.socket]) -> None:
    """Serve connections taken from the backlog as the listener would have."""
    config = server.config
    loop = asyncio.get_running_loop()

    def protocol() -> asyncio.Protocol:  # what uvicorn's own listener builds per connection
        return config.http_protocol_class(  # type: ignore[call-arg]
            config=config, server_state=server.server_state, app_state=server.lifespan.state, _loop=loop
        )

    async def serve(connection: socket.socket) -> None:
        connection.setblocking(False)
        try:  # with TLS this waits for the handshake, as the listener would, within its timeout
            await loop.connect_accepted_socket(
                protocol, connection, ssl=config.ssl, ssl_handshake_timeout=_HANDSHAKE if config.ssl else None
            )
        except (OSError, TimeoutError):  # the client left meanwhile, or its handshake failed
            connection.close()

    await asyncio.gather(*(serve(connection) for connection in connections))


async def _wait_drained(app: HttpApp, deadline: float, started: float) -> None:
    """Wait for in-flight requests; past ``deadline`` seconds, cut the rest off (503) and say so."""
    if await app.drain.wait_idle(deadline):
        logger.info("drained in %.3f s", time.monotonic() - started)
        return
    in_flight = app.drain.in_flight
    cut_off = app.endpoint.cut_off()  # each stopped call answers 503 / -31000
    await app.drain.wait_idle(_CLOSE_GRACE)  # let those answers go out
    logger.warning(
        "drain deadline of %g s passed: %d request(s) in flight, %d call(s) cut off "
        "with 503; stopped after %.3f s",
        deadline,
        in_flight,
        cut_off,
        time.monotonic() - started,
    )


async def _until_connections_close(server: uvicorn.Server, seconds: float) -> None:
    """Give idle keep-alive connections until the keep-alive timeout to be closed by their peer.

    Closing one at exit can cross a request a proxy is just sending on it, which the proxy cannot
    retry (a POST); a proxy whose own keep-alive timeout is shorter closes them first.
    """
    tick = 0.05  # nothing signals a closed connection: look again this often
    for _ in range(max(1, round(seconds / tick))):
        if not server.server_state.connections:
            return
        await asyncio.sleep(tick)


async def serve_http(app: HttpApp, settings: Settings, tls: ReloadingTls | None = None) -> bool:
    """Serve until drained after a signal; False if the app failed to start."""
    limits = connection_limits(settings)
    main = _Server(_config(app, settings, settings.port, lifespan="on", limits=limits, tls=tls))
    servers = [main]
    extra = _metrics_listener(app, settings, limits)
    if extra is not None:
        servers.append(extra)
    listening = _listeners(settings.host, settings.port, settings.metrics_port)
    loop = asyncio.get_running_loop()
    drain_task: asyncio.Task[None] | None = None

    async def drain(signum: int) -> None:
        app.drain.stopping = True  # readiness fails from now on
        if signum == signal.SIGTERM and settings.drain_delay > 0:
            logger.info(
                "readiness failing; serving normally for %g s (MCPSERVE_DRAIN_DELAY)", settings.drain_delay
            )
            await asyncio.sleep(settings.drain_delay)  # load balancers take the replica out meanwhile
        started = time.monotonic()
        await _stop_accepting(main, listening[0])
        logger.info("draining: %d request(s) in flight", app.drain.in_flight)
        app.begin_drain()
        await _wait_drained(app, settings.drain_timeout, started)
        # Within the drain budget, so a Kubernetes grace period sized for it still holds.
        budget = max(0.0, settings.drain_timeout - (time.monotonic() - started))
        await _until_connections_close(main, min(settings.keepalive_timeout, budget))
        for server in servers:
            server.should_exit = True

    def on_signal(signum: int) -> None:
        nonlocal drain_task
        if drain_task is not None:
            logger.warning("second %s: exiting at once", signal.Signals(signum).name)
            os._exit(128 + signum)
        logger.info("%s received: starting graceful drain", signal.Signals(signum).name)
        drain_task = loop.create_task(drain(signum))

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
