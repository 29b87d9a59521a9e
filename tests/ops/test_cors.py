"""CORS for browser clients: configured origins only, consistent with the Origin guard."""

from __future__ import annotations

import pytest

from tests.ops.support import call_tool, make_app, modern_headers
from tests.support.asgi import META, request, rpc

pytestmark = pytest.mark.anyio

APP_ORIGIN = "https://app.example.com"


def preflight(
    origin: str, method: str = "POST", headers: str = "content-type, mcp-protocol-version"
) -> dict[str, str]:
    return {
        "origin": origin,
        "access-control-request-method": method,
        "access-control-request-headers": headers,
    }


async def test_preflight_for_an_allowed_origin() -> None:
    app = make_app(cors_origins=f"{APP_ORIGIN}, https://other.example")
    reply = await request(
        app,
        "OPTIONS",
        headers=preflight(APP_ORIGIN, headers="Content-Type, Mcp-Session-Id, Mcp-Param-Region"),
    )
    assert reply.status == 204
    assert reply.headers["access-control-allow-origin"] == APP_ORIGIN
    assert reply.headers["access-control-allow-methods"] == "GET, POST, DELETE"
    assert reply.headers["access-control-allow-headers"] == "content-type, mcp-session-id, mcp-param-region"
    assert reply.headers["vary"] == "Origin"


@pytest.mark.parametrize(
    "headers",
    [
        preflight("https://evil.example"),
        preflight(APP_ORIGIN, method="PUT"),
        preflight(APP_ORIGIN, headers="content-type, x-secret-admin"),
    ],
)
async def test_preflight_refusals(headers: dict[str, str]) -> None:
    reply = await request(make_app(cors_origins=APP_ORIGIN), "OPTIONS", headers=headers)
    assert reply.status == 403
    assert "access-control-allow-origin" not in reply.headers


async def test_allowed_origin_passes_the_origin_guard_and_gets_cors_headers() -> None:
    app = make_app(cors_origins=APP_ORIGIN)
    body = rpc("tools/call", {"name": "echo", "arguments": {"text": "hi"}, "_meta": META})
    reply = await request(
        app, "POST", headers={**modern_headers("tools/call", "echo"), "origin": APP_ORIGIN}, body=body
    )
    assert reply.status == 200
    assert reply.headers["access-control-allow-origin"] == APP_ORIGIN
    assert "Mcp-Session-Id" in reply.headers["access-control-expose-headers"]
    refused = await request(
        app,
        "POST",
        headers={**modern_headers("tools/call", "echo"), "origin": "https://evil.example"},
        body=body,
    )
    assert refused.status == 403
    assert "access-control-allow-origin" not in refused.headers


async def test_no_cors_by_default() -> None:
    app = make_app()
    # Not configured: no preflight answer; the Origin guard refuses the foreign origin.
    assert (await request(app, "OPTIONS", headers=preflight(APP_ORIGIN))).status == 403
    reply = await call_tool(app, "echo", {"text": "x"})
    assert "access-control-allow-origin" not in reply.headers


async def test_browsers_may_read_the_auth_challenge_and_the_rate_limit_headers() -> None:
    app = make_app(cors_origins=APP_ORIGIN)
    body = rpc("tools/call", {"name": "echo", "arguments": {"text": "hi"}, "_meta": META})
    reply = await request(
        app, "POST", headers={**modern_headers("tools/call", "echo"), "origin": APP_ORIGIN}, body=body
    )
    exposed = {name.strip().lower() for name in reply.headers["access-control-expose-headers"].split(",")}
    assert exposed >= {
        "mcp-session-id",
        "mcp-protocol-version",
        "x-request-id",
        "www-authenticate",
        "retry-after",
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
        "ratelimit",
        "ratelimit-policy",
    }
