"""The request record names who made a request and which tool, even when it is refused after
authentication (rate limit, another principal's session)."""

from __future__ import annotations

import io
import uuid
from typing import Any

import pytest

from mcpserve.config import load_settings
from mcpserve.runtime import build_http_app
from mcpserve.transports.http.app import HttpApp
from tests.ops.support import LEGACY_HEADERS, labels, make_server, modern_headers, scrape, session_headers
from tests.support.asgi import META, Reply, request, rpc
from tests.support.logcheck import check_log_lines, secret

pytestmark = pytest.mark.anyio


def keyed_app(*keys: str) -> HttpApp:
    settings = {"api_keys": list(keys), "rate_limit_per_minute": 1, "rate_limit_per_hour": 0}
    return build_http_app(make_server(), load_settings(settings))


def new_key() -> str:
    return secret(f"mcps_test_{uuid.uuid4().hex}")


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def request_lines(logs: io.BytesIO) -> list[dict[str, Any]]:
    return [line for line in check_log_lines(logs.getvalue()) if line["event"] == "request"]


async def modern_call(app: HttpApp, key: str, tool: str, request_id: int) -> Reply:
    body = rpc("tools/call", {"name": tool, "arguments": {"text": "x"}, "_meta": META}, request_id)
    return await request(
        app, "POST", headers={**modern_headers("tools/call", tool), **bearer(key)}, body=body
    )


async def test_a_modern_call_limited_from_its_headers_keeps_era_method_principal_and_tool(
    checked_logs: io.BytesIO,
) -> None:
    key = new_key()
    app = keyed_app(key)
    assert (await modern_call(app, key, "echo", 1)).status == 200
    assert (await modern_call(app, key, "echo", 2)).status == 429
    made_up = "no-such-tool-" + "y" * 300
    assert (await modern_call(app, key, made_up, 3)).status == 429
    ran, limited, unknown = request_lines(checked_logs)
    assert str(ran["principal"]).startswith("api-key-")
    for line in (limited, unknown):
        assert (line["era"], line["method"], line["principal"], line["status"], line["outcome"]) == (
            "modern",
            "tools/call",
            ran["principal"],
            429,
            "rate_limited",
        )
    assert limited["tool"] == "echo"
    assert unknown["tool"] == made_up[:200]  # truncated like every logged name
    samples = await scrape(app)
    requests = "mcp_requests_total"
    assert samples[(requests, labels(method="tools/call", era="modern", status="429"))] == 2
    assert (requests, labels(method="POST", era="unknown", status="429")) not in samples
    calls = "mcp_tool_calls_total"
    assert samples[(calls, labels(tool="echo", status="success"))] == 1
    assert samples[(calls, labels(tool="echo", status="rate_limited"))] == 1
    assert samples[(calls, labels(tool="unknown", status="rate_limited"))] == 1
    # A refused call ran for no time: the duration histogram counts only the call that ran.
    assert samples[("mcp_tool_call_duration_seconds_count", labels(tool="echo"))] == 1


async def test_a_limited_legacy_call_keeps_its_tool(checked_logs: io.BytesIO) -> None:
    key = new_key()
    app = keyed_app(key)
    session = await open_session(app, key)
    for request_id in (2, 3):
        body = rpc("tools/call", {"name": "echo", "arguments": {"text": "x"}}, request_id)
        await request(app, "POST", headers={**session_headers(session), **bearer(key)}, body=body)
    *_, ran, limited = request_lines(checked_logs)
    assert (ran["status"], ran["outcome"]) == (200, "success")
    assert (limited["era"], limited["method"], limited["tool"], limited["status"]) == (
        "legacy",
        "tools/call",
        "echo",
        429,
    )
    assert (limited["principal"], limited["outcome"]) == (ran["principal"], "rate_limited")
    samples = await scrape(app)
    assert samples[("mcp_tool_calls_total", labels(tool="echo", status="rate_limited"))] == 1


async def open_session(app: HttpApp, key: str) -> str:
    params = {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    }
    reply = await request(
        app, "POST", headers={**LEGACY_HEADERS, **bearer(key)}, body=rpc("initialize", params)
    )
    assert reply.status == 200, reply.body
    return reply.headers["mcp-session-id"]


async def test_refusals_after_authentication_log_the_principal(checked_logs: io.BytesIO) -> None:
    owner, other = new_key(), new_key()
    app = keyed_app(owner, other)
    session = await open_session(app, owner)
    headers = session_headers(session)
    assert (await request(app, "DELETE", headers={**headers, **bearer(other)})).status == 404
    assert (await request(app, "DELETE", headers={**headers, **bearer(owner)})).status == 200
    opened, foreign, deleted = request_lines(checked_logs)
    assert [line["method"] for line in (foreign, deleted)] == ["DELETE", "DELETE"]
    assert foreign["status"] == 404 and deleted["status"] == 200
    assert opened["principal"] == deleted["principal"]
    assert foreign["principal"] is not None and foreign["principal"] != opened["principal"]
