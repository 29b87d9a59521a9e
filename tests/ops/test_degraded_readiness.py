"""A failing non-critical dependency (Redis behind fail-open rate limits) degrades, never un-readies."""

from __future__ import annotations

import os

import orjson
import pytest
from click.testing import CliRunner

from mcpserve import MCPServer
from mcpserve.cli import main
from mcpserve.server.readiness import readiness_report
from tests.ops.support import body_of, call_tool, make_app, make_server
from tests.support.asgi import request

# Nothing listens on port 1: every Redis call fails at once.
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"


@pytest.mark.anyio
async def test_redis_down_leaves_ready_degraded_and_calls_admitted() -> None:
    app = make_app(make_server(), redis_url=UNREACHABLE_REDIS, rate_limit_per_minute=5, state="memory")
    async with app.endpoint.dispatcher.server.lifespan():
        reply = await request(app, "GET", path="/ready")
        assert reply.status == 200
        body = body_of(reply)
        assert (body["status"], body["degraded"], body["checks"]["sessions"]) == ("ready", True, "ok")
        assert body["checks"]["redis"] != "ok"
        called = await call_tool(app, "echo", {"text": "still served"})
        assert called.status == 200
        assert body_of(called)["result"]["content"][0]["text"] == "still served"


@pytest.mark.anyio
async def test_a_failing_critical_check_still_makes_the_server_not_ready() -> None:
    server = make_server()

    async def down() -> None:
        raise ConnectionRefusedError("refused")

    server.add_readiness_check("database", down)
    server.add_readiness_check("cache", down, critical=False)
    reply = await request(make_app(server), "GET", path="/ready")
    assert reply.status == 503
    assert body_of(reply)["status"] == "not ready"
    assert "degraded" not in body_of(reply)


def test_report_marks_degraded_only_when_a_noncritical_check_fails() -> None:
    assert readiness_report({"a": "ok", "b": "ok"}, {"b"}) == {
        "status": "ready",
        "checks": {"a": "ok", "b": "ok"},
    }
    assert readiness_report({"a": "ok", "b": "down"}, {"b"})["degraded"] is True


def test_check_exits_0_when_only_degraded(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in os.environ if k.upper().startswith("MCPSERVE_")]:
        monkeypatch.delenv(key)
    result = CliRunner().invoke(
        main,
        ["check", "tests.ops.check_app:ready"],
        env={"MCPSERVE_AUTH": "none", "MCPSERVE_REDIS_URL": UNREACHABLE_REDIS, "MCPSERVE_STATE": "memory"},
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.stdout)
    assert (report["status"], report["degraded"], report["checks"]["cache"]) == ("ready", True, "ok")
    assert report["checks"]["redis"] != "ok"


def test_noncritical_registration_is_recorded() -> None:
    server = MCPServer("registration")

    async def fine() -> None:
        return None

    server.add_readiness_check("metrics-sink", fine, critical=False)
    server.add_readiness_check("database", fine)
    assert server.noncritical_checks == {"metrics-sink"}
