"""MCPServer lifecycle hooks and readiness checks, run by the HTTP app's ASGI lifespan."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from mcpserve import MCPServer
from mcpserve.config import load_settings
from mcpserve.runtime import build_http_app

pytestmark = pytest.mark.anyio


async def _run_lifespan(app: Any, *, shutdown: bool = True) -> list[dict[str, Any]]:
    inbox = [{"type": "lifespan.startup"}] + ([{"type": "lifespan.shutdown"}] if shutdown else [])
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return inbox.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app({"type": "lifespan"}, receive, send)
    return sent


async def test_hooks_run_in_order_around_serving() -> None:
    server = MCPServer("t")
    order: list[str] = []

    @server.on_startup
    async def open_pool() -> None:
        order.append("open pool")

    @server.on_startup
    async def warm_cache() -> None:
        order.append("warm cache")

    @server.on_shutdown
    async def close_pool() -> None:
        order.append("close pool")

    @server.on_shutdown
    async def flush() -> None:
        order.append("flush")

    app = build_http_app(server, load_settings({"auth": "none"}))
    sent = await _run_lifespan(app)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert order == ["open pool", "warm cache", "flush", "close pool"]
    assert app.endpoint.dispatcher.closing.is_set()


async def test_failed_startup_is_reported_and_still_shuts_down() -> None:
    server = MCPServer("t")
    closed = anyio.Event()

    @server.on_startup
    async def boom() -> None:
        raise RuntimeError("database unreachable at startup")

    @server.on_shutdown
    async def close() -> None:
        closed.set()

    sent = await _run_lifespan(build_http_app(server, load_settings({"auth": "none"})), shutdown=False)
    assert sent == [{"type": "lifespan.startup.failed", "message": "RuntimeError"}]
    assert closed.is_set()


async def test_failed_shutdown_hook_is_reported() -> None:
    server = MCPServer("t")

    @server.on_shutdown
    async def boom() -> None:
        raise RuntimeError("flush failed")

    sent = await _run_lifespan(build_http_app(server, load_settings({"auth": "none"})))
    assert sent[-1] == {"type": "lifespan.shutdown.failed", "message": "RuntimeError"}


async def test_readiness_checks_are_registered_once_by_name() -> None:
    server = MCPServer("t")

    async def database() -> None:
        return None

    server.add_readiness_check("database", database)
    assert server.readiness_checks == {"database": database}
    with pytest.raises(ValueError, match="already registered"):
        server.add_readiness_check("database", database)
