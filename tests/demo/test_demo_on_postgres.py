"""The demo served from a private PostgreSQL that stops and returns: readiness and tools follow it."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import anyio.to_thread
import pytest

from mcpserve.config import load_settings
from mcpserve.demo.app import create_app
from mcpserve.demo.load_postgres import load_demo
from mcpserve.demo.sql import DatabaseUnavailable
from mcpserve.runtime import build_http_app
from mcpserve.server.app import MCPServer
from tests.support.asgi import META, MODERN_HEADERS, request, rpc
from tests.support.postgres import PrivatePostgres, private_postgres, with_search_path

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


@pytest.fixture(scope="module")
def postgres() -> Iterator[PrivatePostgres]:
    with private_postgres() as server:
        anyio.run(load_demo, server.url, "ops")
        yield server


def _demo(server: PrivatePostgres) -> MCPServer:
    settings = load_settings(
        {"auth": "none", "database_url": with_search_path(server.url, "ops"), "db_statement_timeout": 2}
    )
    return create_app(settings)


async def _query(app: Any, sql: str) -> dict[str, Any]:
    headers = {**MODERN_HEADERS, "mcp-method": "tools/call", "mcp-name": "query_database"}
    body = rpc("tools/call", {"name": "query_database", "arguments": {"sql": sql}, "_meta": META})
    reply = await request(app, "POST", headers=headers, body=body)
    assert reply.status == 200
    result: dict[str, Any] = reply.json()["result"]
    return result


async def _ready(server: MCPServer) -> str | None:
    """None when the database check passes, else its message."""
    try:
        await server.readiness_checks["database"]()
    except DatabaseUnavailable as exc:
        return str(exc)
    return None


async def test_readiness_and_queries_follow_the_database(postgres: PrivatePostgres) -> None:
    server = _demo(postgres)
    app = build_http_app(server, load_settings({"auth": "none"}))
    async with server.lifespan():
        assert await _ready(server) is None
        ready = await request(app, "GET", path="/ready")
        assert (ready.status, ready.json()["checks"]["database"]) == (200, "ok")
        ok = await _query(app, "SELECT count(*) AS n FROM services")
        assert ok["structuredContent"]["rows"] == [[10]]

        await anyio.to_thread.run_sync(postgres.stop)
        reason = await _ready(server)
        assert reason is not None
        assert "PostgreSQL" in reason
        assert str(postgres.port) not in reason
        not_ready = await request(app, "GET", path="/ready")
        assert not_ready.status == 503
        assert not_ready.json()["status"] == "not ready"
        assert "PostgreSQL" in not_ready.json()["checks"]["database"]
        assert not_ready.json()["checks"]["sessions"] == "ok"
        down = await _query(app, "SELECT 1")
        assert down["isError"] is True
        assert "PostgreSQL" in down["content"][0]["text"]
        headers = {**MODERN_HEADERS, "mcp-method": "prompts/get", "mcp-name": "summarize_incident"}
        body = rpc(
            "prompts/get", {"name": "summarize_incident", "arguments": {"incident_id": "1"}, "_meta": META}
        )
        prompt = await request(app, "POST", headers=headers, body=body)
        assert prompt.json()["error"]["code"] == -31000

        await anyio.to_thread.run_sync(postgres.start)
        assert await _ready(server) is None  # the pool replaced its dead connections
        back = await request(app, "GET", path="/ready")
        assert (back.status, back.json()) == (
            200,
            {"status": "ready", "checks": {"sessions": "ok", "database": "ok"}},
        )
        assert (await _query(app, "SELECT count(*) FROM incidents"))["structuredContent"]["rows"] == [[25]]


async def test_a_database_down_at_start_means_not_ready_then_ready(
    postgres: PrivatePostgres, caplog: pytest.LogCaptureFixture
) -> None:
    server = _demo(postgres)
    await anyio.to_thread.run_sync(postgres.stop)
    try:
        with caplog.at_level(logging.WARNING, logger="mcpserve.demo"):
            async with server.lifespan():
                assert await _ready(server) is not None
                await anyio.to_thread.run_sync(postgres.start)
                assert await _ready(server) is None
    finally:
        if not postgres.running:  # leave it running for the next test even if this one failed
            await anyio.to_thread.run_sync(postgres.start)
    assert any("serving not ready until it answers" in r.getMessage() for r in caplog.records)


async def test_the_demo_tools_work_on_postgres(postgres: PrivatePostgres) -> None:
    server = _demo(postgres)
    app = build_http_app(server, load_settings({"auth": "none"}))
    async with server.lifespan():
        headers = {**MODERN_HEADERS, "mcp-method": "tools/call", "mcp-name": "get_deployment_status"}
        body = rpc(
            "tools/call",
            {"name": "get_deployment_status", "arguments": {"service": "gateway"}, "_meta": META},
        )
        status = (await request(app, "POST", headers=headers, body=body)).json()["result"][
            "structuredContent"
        ]
        assert status["service"]["name"] == "gateway"
        assert status["environments"]["production"]["latest_deployment"]["status"] == "in_progress"
        refused = await _query(app, "DELETE FROM incidents")
        assert refused["isError"] is True
        assert "DELETE is refused" in refused["content"][0]["text"]
