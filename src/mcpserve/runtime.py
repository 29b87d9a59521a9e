"""Composition root: settings + an MCPServer → a dispatcher and a running transport.

Every runtime policy is wired here and nowhere else.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import sys
from typing import IO, Any

import anyio

from mcpserve._version import __version__
from mcpserve.admin.access import AdminAccess
from mcpserve.admin.console import Console, ConsoleParts
from mcpserve.admin.routes import AdminRoutes
from mcpserve.auth_setup import apply_tool_scopes, auth_methods, build_auth_gate
from mcpserve.config import Settings, load_settings
from mcpserve.errors import ConfigError, StoreUnavailable
from mcpserve.observability.logs import configure_logging as configure_json_logging
from mcpserve.observability.logs import get_logger
from mcpserve.observability.metrics import Metrics
from mcpserve.observability.recent import RecentActivity
from mcpserve.observability.requests import RequestObserver
from mcpserve.protocol.sealing import KeyRing
from mcpserve.ratelimit import MemoryLimiter, RateGate, ToolLimits
from mcpserve.ratelimit.base import Limiter
from mcpserve.server.app import MCPServer
from mcpserve.server.dispatch import CacheHint, Dispatcher
from mcpserve.server.notify_limits import NotificationLimits
from mcpserve.server.readiness import readiness_report, run_checks
from mcpserve.store.base import EventStore, MessageBus, SessionStore
from mcpserve.store.memory import MemoryEventStore, MemoryMessageBus, MemorySessionStore
from mcpserve.transports.http.app import HttpApp
from mcpserve.transports.http.cors import CorsPolicy
from mcpserve.transports.http.drain import Drain
from mcpserve.transports.http.endpoint import EndpointOptions, McpEndpoint
from mcpserve.transports.http.hostguard import HostGuard
from mcpserve.transports.http.ops import MetricsAccess, OpsRoutes
from mcpserve.transports.http.tables import SessionTables
from mcpserve.urls import http_url

__all__ = [
    "build_dispatcher",
    "build_http_app",
    "build_rate_gate",
    "build_state",
    "check",
    "configure_logging",
    "configure_tracing",
    "mount_upstreams",
    "run_stdio",
    "serve",
]


logger = logging.getLogger("mcpserve")


def _keyring(settings: Settings) -> KeyRing:
    if not settings.request_state_keys:
        return KeyRing.ephemeral()
    try:
        return KeyRing.from_strings([key.get_secret_value() for key in settings.request_state_keys])
    except ValueError as exc:
        raise ConfigError("MCPSERVE_REQUEST_STATE_KEYS", str(exc)) from None


def _tool_timeouts(server: MCPServer, settings: Settings) -> dict[str, float]:
    unknown = sorted(name for name in settings.tool_timeouts if not server.knows_tool(name))
    if unknown:
        raise ConfigError("MCPSERVE_TOOL_TIMEOUTS", f"no tool named {', '.join(map(repr, unknown))}")
    return dict(settings.tool_timeouts)


def _lists_vary_by_caller(settings: Settings) -> bool:
    """Lists filtered per principal must not be shared across callers (``cacheScope: private``)."""
    return settings.transport == "http" and bool(auth_methods(settings))


def mount_upstreams(server: MCPServer, settings: Settings) -> None:
    """Mount the ``[[upstreams]]`` of the settings (the gateway) beside the app's own tools."""
    if not settings.upstreams:
        return
    from mcpserve.gateway.upstream import Upstream  # noqa: PLC0415 - only gateways need it

    for spec in settings.upstreams:
        if spec.name not in server.mounts:
            server.mount(spec.name, Upstream.from_spec(spec))


def build_dispatcher(server: MCPServer, settings: Settings) -> Dispatcher:
    """The dispatcher; with tracing on, the traced one (chosen here, so untraced requests pay nothing)."""
    mount_upstreams(server, settings)
    apply_tool_scopes(server, settings.tool_scopes)
    lists = CacheHint(settings.list_ttl_ms, "private" if _lists_vary_by_caller(settings) else "public")
    options: dict[str, Any] = {
        "keyring": _keyring(settings),
        "request_state_ttl": settings.request_state_ttl,
        "tool_timeout": settings.tool_timeout,
        "tool_timeouts": _tool_timeouts(server, settings),
        "cache_hints": {
            m: lists for m in ("tools/list", "prompts/list", "resources/list", "resources/templates/list")
        },
        "notification_limits": NotificationLimits(
            progress_per_second=settings.progress_notifications_per_second,
            log_per_second=settings.log_notifications_per_second,
            burst=settings.notification_burst,
        ),
    }
    if settings.tracing_enabled:
        from mcpserve.observability.traced import TracedDispatcher  # noqa: PLC0415 - only when tracing
        from mcpserve.observability.tracing import tracer  # noqa: PLC0415
        from mcpserve.tracing_setup import server_spans  # noqa: PLC0415

        return TracedDispatcher(server, tracer=tracer(), spans=server_spans(), **options)
    return Dispatcher(server, **options)


def _limiter(server: MCPServer, settings: Settings) -> Limiter:
    if settings.redis_url is None:
        return MemoryLimiter()
    from mcpserve.ratelimit.redis_backend import RedisLimiter  # noqa: PLC0415 - only with Redis

    limiter = RedisLimiter(settings.redis_url.get_secret_value(), prefix=settings.redis_prefix)
    server.on_startup(limiter.open)
    server.on_shutdown(limiter.aclose)
    # Non-critical: the limiter fails open, so a Redis outage must not pull every replica.
    server.add_readiness_check("redis", limiter.ping, critical=False)
    if settings.tracing_enabled:
        from mcpserve.observability.traced import TracedLimiter  # noqa: PLC0415 - only when tracing

        return TracedLimiter(limiter, limiter.url)
    return limiter


def build_rate_gate(server: MCPServer, settings: Settings) -> RateGate | None:
    """The rate-limit policy from settings; None when every limit is off (nothing on the hot path)."""
    unknown = sorted(name for name in settings.tool_rate_limits if not server.knows_tool(name))
    if unknown:
        raise ConfigError("MCPSERVE_TOOL_RATE_LIMITS", f"no such tool: {', '.join(unknown)}")
    tools = {
        name: ToolLimits(limits.per_minute, limits.per_hour, limits.concurrency)
        for name, limits in settings.tool_rate_limits.items()
        if limits.per_minute or limits.per_hour or limits.concurrency
    }
    if not (settings.rate_limit_per_minute or settings.rate_limit_per_hour or tools):
        return None
    return RateGate(
        _limiter(server, settings),
        per_minute=settings.rate_limit_per_minute,
        per_hour=settings.rate_limit_per_hour,
        tools=tools,
    )


def _host_guard(settings: Settings, *, loopback_names: bool = False) -> HostGuard:
    """The Host/Origin policy (DNS rebinding). An origin allowed to call from a browser must also
    pass the Origin check. ``loopback_names`` adds them to configured hosts, for the console: an
    operator reaches it through a port forward (Host: localhost) even where only public names are
    allowed, and a rebinding page still names its own host, so this opens nothing to it."""
    hosts = settings.allowed_hosts
    if loopback_names and hosts:
        hosts = [*hosts, "localhost", "127.0.0.1", "[::1]"]
    return HostGuard(
        hosts,
        [*settings.allowed_origins, *settings.cors_origins],
        settings.trusted_proxies,
        bind_host=settings.host,
    )


def build_state(server: MCPServer, settings: Settings) -> tuple[SessionStore, EventStore, MessageBus]:
    """Sessions, their events and the message bus: in this process, or in Redis for every replica."""
    if settings.state_backend == "memory":
        sessions = MemorySessionStore(
            idle_timeout=settings.session_idle_timeout,
            max_sessions=settings.max_sessions,
            max_per_owner=settings.max_sessions_per_principal,
            max_events=settings.session_max_events,
            sweep_interval=settings.session_sweep_interval,
        )
        bus = server.bus if isinstance(server.bus, MemoryMessageBus) else MemoryMessageBus()
        return sessions, MemoryEventStore(sessions), bus
    if settings.redis_url is None:
        raise ConfigError("MCPSERVE_REDIS_URL", "must be set when MCPSERVE_STATE=redis")
    if not settings.request_state_keys:
        # Per-process keys: a multi-round 2026-07-28 request fails whenever its retry lands elsewhere.
        raise ConfigError(
            "MCPSERVE_REQUEST_STATE_KEYS",
            "must be set (the same on every replica) when session state is shared in Redis; "
            "make one with `mcpserve new-key`",
        )
    from mcpserve.store.cached import CachedSessionStore  # noqa: PLC0415 - only with Redis
    from mcpserve.store.redis_bus import RedisMessageBus  # noqa: PLC0415 - only with Redis
    from mcpserve.store.redis_connection import STATE_RETRY, connect  # noqa: PLC0415
    from mcpserve.store.redis_store import RedisEventStore, RedisSessionStore  # noqa: PLC0415

    client = connect(settings.redis_url.get_secret_value(), retry=STATE_RETRY)
    redis_sessions = RedisSessionStore(
        client,
        prefix=settings.state_prefix,
        idle_timeout=settings.session_idle_timeout,
        max_sessions=settings.max_sessions,
        max_per_owner=settings.max_sessions_per_principal,
        max_events=settings.session_max_events,
    )
    redis_bus = RedisMessageBus(client, prefix=settings.state_prefix)
    server.bus = redis_bus  # list changes and resource updates reach every replica
    server.on_shutdown(client.aclose)
    server.on_shutdown(redis_bus.aclose)  # shutdown hooks run in reverse: the bus first
    # Readiness needs no check of its own: /ready counts sessions, which fails while Redis is down.
    events = RedisEventStore(redis_sessions)
    if settings.session_cache_ttl:
        return CachedSessionStore(redis_sessions, fresh_for=settings.session_cache_ttl), events, redis_bus
    return redis_sessions, events, redis_bus


def build_http_app(server: MCPServer, settings: Settings) -> HttpApp:
    """The ASGI app: endpoint, state stores and the Host/Origin policy, all from settings."""
    dispatcher = build_dispatcher(server, settings)
    gate = build_auth_gate(server, settings)
    if gate is not None:
        server.on_shutdown(gate.aclose)
        if gate.readiness is not None:
            server.add_readiness_check("oauth", gate.readiness)
    guard = _host_guard(settings)
    sessions, events, bus = build_state(server, settings)
    metrics = Metrics(network_transport="tcp")
    for collector in server.metric_collectors:
        metrics.registry.register(collector)
    if settings.tracing_enabled:
        from mcpserve.tracing_setup import export_collector  # noqa: PLC0415 - only when tracing

        exported = export_collector()
        if exported is not None:
            metrics.registry.register(exported)
    metrics.build_info.labels(__version__, server.name).set(1)
    if isinstance(sessions, MemorySessionStore):  # Redis expires sessions itself, unobserved
        sessions.on_end = metrics.session_duration.observe
    drain = Drain()
    recent = RecentActivity()
    limits = build_rate_gate(server, settings)
    endpoint = McpEndpoint(
        dispatcher,
        sessions=sessions,
        events=events,
        guard=guard,
        options=EndpointOptions(
            max_body_bytes=settings.max_body_bytes,
            session_sweep_interval=settings.session_sweep_interval,
            shared_state=settings.state_backend == "redis",
        ),
        auth=gate,
        limits=limits,
        drain=drain,
        observer=RequestObserver(metrics, server, recent),
        # Shared state: answers, cancellations and the one GET stream reach every replica.
        tables=SessionTables.shared(bus) if settings.state_backend == "redis" else None,
    )
    if isinstance(endpoint.limits, RateGate):
        endpoint.limits.on_reject = metrics.rate_limit_rejection

    async def count_sessions() -> None:
        with contextlib.suppress(StoreUnavailable):  # the gauge keeps its last value; /ready says why
            metrics.active_sessions.set(await sessions.count())

    metrics.before_scrape(count_sessions)
    metrics.in_flight.set_function(lambda: drain.in_flight)
    metrics.draining.set_function(lambda: 1 if drain.draining else 0)
    on_main_port = settings.metrics_port is None
    ops = OpsRoutes(
        checks=server.readiness_checks,
        noncritical=server.noncritical_checks,
        sessions=sessions,
        drain=drain,
        metrics=metrics,
        metrics_access=MetricsAccess(settings.metrics_allow, guard) if on_main_port else None,
        serve_metrics=on_main_port,
        serve_admin=on_main_port,
    )

    async def readiness_gauges() -> None:
        status, report = await ops.readiness()
        metrics.readiness(status == 200, report.get("checks", {}))

    metrics.before_scrape(readiness_gauges)
    if settings.admin_console:
        # Mounted after the ops routes exist: the console reads them (readiness, drain, sessions).
        console = Console(
            ConsoleParts(
                settings=settings,
                server=server,
                metrics=metrics,
                ops=ops,
                recent=recent,
                auth_methods=auth_methods(settings),
                rate_gate=limits,
                timeout_for=dispatcher.timeout_for,
            )
        )
        ops.admin = AdminRoutes(console, AdminAccess(gate, _host_guard(settings, loopback_names=True)))
        ops.serve_admin = on_main_port
    return HttpApp(
        endpoint,
        settings.path,
        gate.documents if gate is not None else None,
        ops=ops,
        cors=CorsPolicy(settings.cors_origins) if settings.cors_origins else None,
    )


def configure_logging(settings: Settings, stream: IO[bytes] | None = None) -> None:
    """JSON lines on stderr only (on stdio, stdout belongs to the protocol). The first line is a
    one-line summary; the effective configuration (secrets redacted) follows at debug level, where
    it does not bury the line a start-up error prints after it."""
    context = None
    if settings.tracing_enabled:
        from mcpserve.observability.tracing import add_trace_ids  # noqa: PLC0415 - only when tracing

        context = add_trace_ids
    configure_json_logging(settings.log_level, stream, context)
    log = get_logger("mcpserve")
    where = http_url(settings.host, settings.port, settings.path) if settings.transport == "http" else "stdio"
    log.info(f"mcpserve {__version__} starting on {where}")
    log.debug("configuration", config=settings.redacted())
    for level, message in settings.notices:  # service links ignored, world-readable secret files
        getattr(log, level)(message)


def configure_tracing(settings: Settings) -> None:
    """Install the process's tracer provider when tracing is on (``docs/tracing.md``)."""
    if settings.tracing_enabled:
        from mcpserve.observability.tracing import install_request_context  # noqa: PLC0415
        from mcpserve.tracing_setup import configure_tracing as install  # noqa: PLC0415

        install(settings)
        # Before the server starts, in the thread that runs it: its requests start in this
        # context, so one left out of sampling makes no span current (see RequestContext).
        install_request_context()


def check(server: MCPServer, settings: Settings) -> dict[str, Any]:
    """Build everything ``serve`` would, run startup hooks and every readiness check, serve nothing.

    Raises :class:`ConfigError` for settings that only fail when wired (keys, authentication, ...).
    """
    app = build_http_app(server, settings) if settings.transport == "http" else None
    if app is None:
        build_dispatcher(server, settings)
        build_rate_gate(server, settings)

    async def main() -> dict[str, Any]:
        try:
            async with server.lifespan():
                if app is not None:
                    return (await app.ops.readiness())[1]
                results = await run_checks(server.readiness_checks)
                return readiness_report(results, server.noncritical_checks)
        except Exception as exc:
            return {"status": "not ready", "startup": f"{type(exc).__name__}: {exc}"[:200]}

    return anyio.run(main)


def run_stdio(server: MCPServer, settings: Settings) -> None:
    from mcpserve.transports.stdio import serve_stdio  # noqa: PLC0415 - only this transport needs it

    dispatcher = build_dispatcher(server, settings)
    gate = build_rate_gate(server, settings)
    if settings.auth not in (None, "none"):
        # stdio has no Authorization header: whoever starts the process is trusted with it.
        logger.info("MCPSERVE_AUTH applies to HTTP only; stdio runs without authentication")
    if not settings.request_state_keys:
        logger.info("requestState keys are ephemeral (set MCPSERVE_REQUEST_STATE_KEYS to share them)")

    async def main() -> None:
        async with server.lifespan():
            await serve_stdio(
                dispatcher,
                sys.stdin.buffer,
                sys.stdout.buffer,
                max_line_bytes=settings.max_body_bytes,
                gate=gate,
            )

    anyio.run(main, backend_options={"use_uvloop": True})


_YOUNG_THRESHOLD = 7_000


def _prepare_heap_for_serving() -> None:
    """Leave everything built before serving out of every later garbage collection.

    Under load, requests that wait (a sync tool on the handler pool, an async tool at an await)
    are alive at nearly every gen-0 collection, so their objects are promoted until a full
    collection runs: one walks the whole heap, some 60,000 objects of modules and app, and held
    the loop 30-50 ms every half second or so on the benchmark machine. That was the sync echo's
    p99 at 64 connections (45 ms, p50 12 ms). Frozen, that heap is skipped: a full collection
    takes about 2 ms. The collection first keeps garbage from being frozen for good.

    The young-generation threshold goes from 700 to 7,000 allocations: a request in flight
    allocates a few hundred objects, so at 700 a server under load ran a gen-0 collection every
    few requests (20 times as many as the same load with an async tool); those collections also
    promote the objects of requests still waiting, which is what feeds the full ones. 7,000
    young objects are well under a megabyte, and a gen-0 pass over them well under a millisecond.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


def serve(
    server: MCPServer, *, transport: str = "stdio", settings: Settings | None = None, **overrides: Any
) -> None:
    """Run ``server`` with validated settings on the chosen transport."""
    settings = settings or load_settings({"transport": transport, **overrides})
    configure_logging(settings)
    configure_tracing(settings)
    if settings.transport == "stdio":
        _prepare_heap_for_serving()
        run_stdio(server, settings)
        return
    from mcpserve.transports.http.serve import run_http  # noqa: PLC0415 - optional heavy imports

    app = build_http_app(server, settings)
    _prepare_heap_for_serving()
    run_http(app, settings)
