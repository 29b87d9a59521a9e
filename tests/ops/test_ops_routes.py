"""/health, /ready and who may read /metrics, in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import pytest
from anyio.abc import SocketAttribute

from mcpserve import MCPServer
from mcpserve.server.readiness import run_checks
from tests.ops.support import body_of, make_app, make_server
from tests.support.asgi import request

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def tcp_dependency(port: int = 0) -> AsyncIterator[int]:
    """A real TCP service on loopback (accepts and closes), standing in for a database."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=port)

    async def serve() -> None:
        async def handle(stream: anyio.abc.SocketStream) -> None:
            await stream.aclose()

        await listener.serve(handle)

    async with anyio.create_task_group() as group:
        group.start_soon(serve)
        yield listener.extra(SocketAttribute.local_port)
        group.cancel_scope.cancel()
    await listener.aclose()


async def test_health_touches_no_dependency() -> None:
    server = make_server()

    async def broken() -> None:
        raise ConnectionRefusedError("database down")

    server.add_readiness_check("database", broken)
    reply = await request(make_app(server), "GET", path="/health")
    assert (reply.status, body_of(reply)) == (200, {"status": "ok"})


async def test_ready_follows_a_real_dependency_going_down_and_coming_back() -> None:
    server = make_server()
    port = 0

    async def dependency() -> None:
        stream = await anyio.connect_tcp("127.0.0.1", port)
        await stream.aclose()

    server.add_readiness_check("database", dependency)
    app = make_app(server)
    async with tcp_dependency() as bound:
        port = bound
        ready = await request(app, "GET", path="/ready")
        assert (ready.status, body_of(ready)) == (
            200,
            {"status": "ready", "checks": {"sessions": "ok", "database": "ok"}},
        )
    down = await request(app, "GET", path="/ready")
    assert down.status == 503
    assert body_of(down)["status"] == "not ready"
    assert body_of(down)["checks"]["sessions"] == "ok"
    assert body_of(down)["checks"]["database"] == "OSError: All connection attempts failed"
    async with tcp_dependency(port):
        assert (await request(app, "GET", path="/ready")).status == 200


async def test_ready_is_503_draining_first() -> None:
    app = make_app()
    app.begin_drain()
    reply = await request(app, "GET", path="/ready")
    assert (reply.status, body_of(reply)) == (503, {"status": "draining"})
    assert (await request(app, "GET", path="/health")).status == 200


async def test_readiness_reasons_hide_credentials_and_time_out() -> None:
    async def leaky() -> None:
        raise OSError("cannot reach postgresql://app:s3cret@db:5432/app")

    async def hangs() -> None:
        await anyio.sleep_forever()

    async def fine() -> None:
        return None

    results = await run_checks({"leaky": leaky, "hangs": hangs, "fine": fine}, per_check=0.05)
    assert results == {
        "leaky": "OSError: cannot reach postgresql://***@db:5432/app",
        "hangs": "timed out after 0.05 s",
        "fine": "ok",
    }


async def test_metrics_only_for_allowed_clients() -> None:
    app = make_app(metrics_allow="10.1.0.0/16", trusted_proxies="192.168.0.1")
    assert (await request(app, "GET", path="/metrics", client="127.0.0.1")).status == 403
    assert (await request(app, "GET", path="/metrics", client="10.1.2.3")).status == 200
    assert (await request(app, "GET", path="/metrics", client="10.2.0.1")).status == 403
    # Behind a trusted proxy the client is the nearest untrusted X-Forwarded-For hop.
    forwarded = {"x-forwarded-for": "203.0.113.9, 10.1.9.9"}
    assert (await request(app, "GET", path="/metrics", client="192.168.0.1", headers=forwarded)).status == 200
    spoofed = {"x-forwarded-for": "10.1.9.9, 203.0.113.9"}
    assert (await request(app, "GET", path="/metrics", client="192.168.0.1", headers=spoofed)).status == 403
    # An untrusted peer cannot claim an allowed address.
    assert (await request(app, "GET", path="/metrics", client="203.0.113.9", headers=forwarded)).status == 403


async def test_metrics_default_is_loopback_only() -> None:
    app = make_app()
    assert (await request(app, "GET", path="/metrics", client="127.0.0.1")).status == 200
    assert (await request(app, "GET", path="/metrics", client="::1")).status == 200
    assert (await request(app, "GET", path="/metrics", client="10.0.0.5")).status == 403


async def test_metrics_port_moves_metrics_off_the_main_port() -> None:
    app = make_app(metrics_port=9464)
    assert (await request(app, "GET", path="/metrics")).status == 404
    assert (await request(app, "GET", path="/ready")).status == 200


async def test_ops_routes_are_read_only_and_unknown_paths_404() -> None:
    app = make_app()
    assert (await request(app, "POST", path="/ready")).status == 405
    assert (await request(app, "GET", path="/nope")).status == 404


async def test_ready_reports_a_check_registered_during_startup() -> None:
    server = MCPServer("late")

    @server.on_startup
    async def register() -> None:
        async def pool() -> None:
            raise RuntimeError("pool closed")

        server.add_readiness_check("pool", pool)

    app = make_app(server)
    async with server.lifespan():
        reply = await request(app, "GET", path="/ready")
    assert body_of(reply)["checks"] == {"sessions": "ok", "pool": "RuntimeError: pool closed"}
