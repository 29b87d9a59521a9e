"""The per-caller cap on live 2025-era sessions (MCPSERVE_MAX_SESSIONS_PER_PRINCIPAL), both backends.

A caller is its principal when authenticated, else its address as the rate limits see it. One
caller at its cap is refused with 429 and -31001; others still initialise; a DELETE or an
expiry gives the slot back.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import pytest

from mcpserve import MCPServer
from mcpserve.config import load_settings
from mcpserve.runtime import build_http_app
from mcpserve.transports.http.app import HttpApp
from tests.support.asgi import Reply, request, rpc
from tests.support.polling import eventually

pytestmark = pytest.mark.anyio

KEYS = ["mcps_first-caller-key", "mcps_second-caller-key"]
KEY = "YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE"  # 32 bytes, base64url: a test key only
LEGACY = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
INIT = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}


@pytest.fixture(params=["memory", "redis"])
async def make_app(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """Builds apps of one backend; their lifespans end with the test."""
    async with AsyncExitStack() as stack:

        async def build(**settings: Any) -> HttpApp:
            values: dict[str, Any] = {"max_sessions_per_principal": 2, **settings}
            if request.param == "redis":
                url = request.getfixturevalue("redis_url")
                values |= {
                    "redis_url": url,
                    "request_state_keys": KEY,
                    "state_prefix": f"t-{uuid.uuid4().hex}:",
                }
            app = build_http_app(MCPServer("caps"), load_settings(values))
            await stack.enter_async_context(app.endpoint.dispatcher.server.lifespan())
            return app

        yield build


def as_key(key: str | None) -> dict[str, str]:
    return {**LEGACY, "authorization": f"Bearer {key}"} if key is not None else dict(LEGACY)


async def initialize(app: HttpApp, key: str | None = None, client: str = "127.0.0.1") -> Reply:
    return await request(app, "POST", headers=as_key(key), body=rpc("initialize", INIT, 7), client=client)


async def test_one_key_cannot_pass_its_cap_and_another_key_still_initialises(make_app: Any) -> None:
    app = await make_app(api_keys=KEYS)
    first = [await initialize(app, KEYS[0]) for _ in range(2)]
    assert [reply.status for reply in first] == [200, 200]
    refused = await initialize(app, KEYS[0])
    assert refused.status == 429
    assert refused.headers["retry-after"] == "5"
    error = refused.json()["error"]
    assert refused.json()["id"] == 7
    assert error["code"] == -31001 and "sessions" in error["message"]
    assert error["data"] == {"retryAfter": 5}
    assert (await initialize(app, KEYS[1])).status == 200  # the other key is not locked out
    # DELETE gives a slot back at once.
    session_id = first[0].headers["mcp-session-id"]
    headers = {**as_key(KEYS[0]), "mcp-session-id": session_id}
    assert (await request(app, "DELETE", headers=headers)).status == 200
    assert (await initialize(app, KEYS[0])).status == 200
    assert (await initialize(app, KEYS[0])).status == 429


async def test_without_authentication_the_cap_is_per_client_address(make_app: Any) -> None:
    app = await make_app(auth="none", rate_limit_per_minute=0, rate_limit_per_hour=0)
    assert [(await initialize(app, client="10.0.0.1")).status for _ in range(3)] == [200, 200, 429]
    assert (await initialize(app, client="10.0.0.2")).status == 200


async def test_behind_a_trusted_proxy_the_cap_is_per_forwarded_address(make_app: Any) -> None:
    app = await make_app(auth="none", trusted_proxies=["127.0.0.1"])

    async def via_proxy(address: str) -> int:
        headers = {**LEGACY, "x-forwarded-for": address}
        return (await request(app, "POST", headers=headers, body=rpc("initialize", INIT))).status

    assert [await via_proxy("192.0.2.1") for _ in range(3)] == [200, 200, 429]
    assert await via_proxy("192.0.2.2") == 200  # the proxy's own address is not the caller


async def test_an_expired_session_gives_its_slot_back(make_app: Any) -> None:
    # Memory frees the slot at expiry; Redis within half an idle timeout after (docs/scaling.md).
    app = await make_app(auth="none", session_idle_timeout=0.5, max_sessions_per_principal=1)
    assert (await initialize(app)).status == 200
    assert (await initialize(app)).status == 429

    async def freed() -> bool:
        reply = await initialize(app)
        return reply.status == 200

    await eventually(freed, within=5)
