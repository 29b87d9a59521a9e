"""What the console shows: figures equal to /metrics, recent errors, limited principals, tools, and
no secret from the configuration in any answer."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from mcpserve import MCPServer
from mcpserve.admin.figures import quantile
from mcpserve.config import load_settings
from mcpserve.errors import StoreUnavailable
from mcpserve.runtime import build_http_app
from mcpserve.transports.http.app import HttpApp
from mcpserve.urls import MASK
from tests.admin.support import ADMIN, USER, bearer, write_keys
from tests.ops.support import call_tool, make_app, make_server, modern_headers, scrape
from tests.support.asgi import META, request, rpc

pytestmark = pytest.mark.anyio


async def overview(app: HttpApp, **options: Any) -> dict[str, Any]:
    reply = await request(app, "GET", path="/admin/api/overview", **options)
    assert reply.status == 200, reply.body
    data: dict[str, Any] = reply.json()
    return data


def total(samples: dict[Any, float], name: str, **where: str) -> float:
    return sum(v for (n, labels), v in samples.items() if n == name and set(where.items()) <= set(labels))


async def test_figures_equal_what_metrics_exports() -> None:
    app = make_app()
    for text in ("a", "b", "c"):
        await call_tool(app, "echo", {"text": text})
    await call_tool(app, "fail", {})
    await call_tool(app, "no-such-tool", {})
    data = await overview(app)
    samples = await scrape(app)
    assert data["traffic"]["requests_total"] == total(samples, "mcp_requests_total") == 5
    errors = sum(
        v
        for (n, labels), v in samples.items()
        if n == "mcp_server_operation_duration_seconds_count"
        and dict(labels)["error_type"] not in ("", "rate_limited")
    )
    assert data["traffic"]["errors_total"] == errors == 2
    tools = {row["name"]: row for row in data["tools"]}
    assert tools["echo"]["calls"] == total(samples, "mcp_tool_calls_total", tool="echo") == 3
    assert tools["fail"]["errors"] == 1
    assert tools["unknown"]["calls"] == 1 and not tools["unknown"]["registered"]
    assert tools["echo"]["p50_seconds"] is not None
    assert tools["hold"]["p50_seconds"] is None
    assert tools["echo"]["timeout_seconds"] == 60.0
    assert data["display"]["tool.echo.calls"] == "3"
    assert data["readiness"]["status"] == "ready"
    assert data["readiness"]["checks"]["sessions"] == {"result": "ok", "critical": True}


async def test_rates_come_from_the_change_between_answers() -> None:
    app = make_app()
    console = app.ops.admin.console  # type: ignore[union-attr]
    now = [100.0]
    console._clock = lambda: now[0]
    first = await overview(app)
    assert first["traffic"]["requests_per_second"] is None  # nothing to compare with yet
    for _ in range(4):
        await call_tool(app, "echo", {"text": "x"})
    now[0] += 2.0
    second = await overview(app)
    assert second["traffic"]["requests_per_second"] == pytest.approx(2.0)
    assert second["traffic"]["errors_per_second"] == 0
    now[0] += 120.0  # every kept sample is too old to compare with
    assert (await overview(app))["traffic"]["requests_per_second"] is None


async def test_recent_errors_keep_identifiers_only_and_are_bounded() -> None:
    server = make_server()

    @server.tool()
    def crash(password: str) -> str:
        """Fails with an exception (a fault of ours): an internal error with an error id."""
        raise RuntimeError("boom " + password)

    app = build_http_app(
        server, load_settings({"auth": "none", "rate_limit_per_minute": 0, "rate_limit_per_hour": 0})
    )
    reply = await call_tool(app, "crash", {"password": "hunter2-secret-argument"})
    text = reply.json()["result"]["content"][0]["text"]
    error_id = text.rsplit(" ", 1)[1].rstrip(")")
    made_up = await request(
        app, "POST", headers=modern_headers("made/up"), body=rpc("made/up", {"_meta": META})
    )
    assert made_up.json()["error"]["code"] == -32601
    data = await overview(app)
    unknown_method, crashed = data["recent_errors"]
    assert crashed["error_id"] == error_id
    assert crashed["tool"] == "crash" and crashed["error_code"] is None and crashed["outcome"] == "tool_error"
    assert (unknown_method["method"], unknown_method["error_code"], unknown_method["outcome"]) == (
        "other",
        -32601,
        "-32601",
    )
    assert crashed["request_id"] == reply.headers["x-request-id"]
    page = (await request(app, "GET", path="/admin")).body.decode()
    assert error_id in page
    assert "hunter2" not in str(data) and "hunter2" not in page
    for _ in range(120):
        await call_tool(app, "fail", {})
    assert len((await overview(app))["recent_errors"]) == 100


async def test_principals_refused_by_a_rate_limit_are_listed(tmp_path: Path) -> None:
    keys = write_keys(tmp_path)
    settings = {
        "api_keys_file": str(tmp_path / "keys.toml"),
        "rate_limit_per_minute": 1,
        "rate_limit_per_hour": 0,
    }
    app = build_http_app(make_server(), load_settings(settings))
    for _ in range(3):
        body = rpc("tools/call", {"name": "echo", "arguments": {"text": "x"}, "_meta": META})
        headers = {**modern_headers("tools/call", "echo"), **bearer(keys[USER])}
        await request(app, "POST", headers=headers, body=body)
    data = await overview(app, headers=bearer(keys[ADMIN]))
    limits = data["rate_limits"]
    assert limits["enabled"] and limits["backend"] == "memory" and limits["per_minute"] == 1
    [limited] = limits["limited_principals"]
    assert (limited["principal"], limited["refusals"]) == (USER, 2)
    assert limits["refusals_total"] == 2
    tools = {row["name"]: row for row in data["tools"]}
    assert (tools["echo"]["calls"], tools["echo"]["errors"], tools["echo"]["refused"]) == (3, 0, 2)
    assert data["traffic"]["errors_total"] == 0  # refusals are not errors
    samples = await scrape(app)
    assert total(samples, "mcp_rate_limited_calls_total", principal=USER, tool="echo") == 2


async def test_tools_show_scopes_limits_and_timeouts(tmp_path: Path) -> None:
    settings = {
        "auth": "none",
        "tool_scopes": {"echo": ["tools:echo"]},
        "tool_timeouts": {"echo": 5},
        "tool_rate_limits": {"echo": {"per_minute": 7, "concurrency": 2}},
    }
    app = build_http_app(make_server(), load_settings(settings))
    tools = {row["name"]: row for row in (await overview(app))["tools"]}
    assert tools["echo"]["scopes"] == ["tools:echo"]
    assert tools["echo"]["timeout_seconds"] == 5
    assert tools["echo"]["limits"] == {"per_minute": 7, "per_hour": 0, "concurrency": 2}
    assert tools["fail"]["limits"] is None
    page = (await request(app, "GET", path="/admin")).body.decode()
    assert "7 per minute, 2 concurrency" in page
    assert "tools:echo" in page


async def test_no_configured_secret_appears_in_any_admin_answer(tmp_path: Path) -> None:
    keys = write_keys(tmp_path)
    plain_key = "plain-api-key-" + "s" * 30
    state_key = base64.urlsafe_b64encode(b"state-key-secret-bytes-32-long!!").decode().rstrip("=")
    secrets = [
        plain_key,
        "redis-password-zz9",
        "oauth-client-secret-qq7",
        state_key,
        keys[ADMIN],
        keys[USER],
    ]
    settings = {
        "api_keys_file": str(tmp_path / "keys.toml"),
        "api_keys": [plain_key],
        "auth": "keys",
        "redis_url": "redis://default:redis-password-zz9@127.0.0.1:1/0",
        "oauth_client_secret": "oauth-client-secret-qq7",
        "request_state_keys": [state_key],
        "database_url": "postgresql://app:db-password-yy8@127.0.0.1:5432/test",
        "otel_exporter_otlp_headers": "x-api-key=vendor-key-ww6",
    }
    secrets.append("vendor-key-ww6")
    secrets.append("db-password-yy8")
    app = build_http_app(MCPServer("secrets"), load_settings(settings))
    for path in ("/admin", "/admin/api/overview", "/admin/api/config", "/admin/assets/console.js"):
        for headers in (bearer(keys[ADMIN]), bearer(keys[USER]), {}):
            reply = await request(app, "GET", path=path, headers=headers)
            text = reply.body.decode() + str(reply.headers)
            for value in secrets:
                assert value not in text, (path, value)
    config = (await request(app, "GET", path="/admin/api/config", headers=bearer(keys[ADMIN]))).json()
    assert config["redis_url"] == f"redis://default:{MASK}@127.0.0.1:1/0"


def test_quantiles_interpolate_within_buckets_like_promql() -> None:
    buckets = [(0.1, 50.0), (0.2, 100.0), (float("inf"), 100.0)]
    assert quantile(0.5, buckets) == pytest.approx(0.1)
    assert quantile(0.75, buckets) == pytest.approx(0.15)
    assert quantile(0.99, [(0.1, 0.0), (float("inf"), 10.0)]) == 0.1  # beyond the last bound
    assert quantile(0.5, [(0.1, 0.0), (float("inf"), 0.0)]) is None
    assert quantile(0.5, []) is None


async def test_an_unreachable_session_store_leaves_the_console_up() -> None:
    app = make_app()

    async def unavailable() -> int:
        raise StoreUnavailable("Session store unavailable")

    app.ops.sessions.count = unavailable  # type: ignore[method-assign]
    data = await overview(app)
    assert data["sessions"]["active"] is None
    assert data["display"]["sessions_active"] == "\u2013"
    assert data["readiness"]["status"] == "not ready"
    assert (await request(app, "GET", path="/admin")).status == 200
