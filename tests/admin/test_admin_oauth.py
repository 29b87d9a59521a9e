"""The console with OAuth: an access token carrying mcpserve:admin opens it, one without is refused
(even when it holds every scope the MCP endpoint requires)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mcpserve.config import load_settings
from mcpserve.runtime import build_http_app
from tests.admin.support import basic, bearer
from tests.ops.support import make_server
from tests.support.asgi import request
from tests.support.issuer import RESOURCE, LocalIssuer, local_issuer
from tests.support.servers import free_port

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def issuer() -> Iterator[LocalIssuer]:
    with local_issuer() as running:
        yield running


async def test_an_oauth_token_needs_the_admin_scope(issuer: LocalIssuer) -> None:
    settings = {
        "auth": "oauth",
        "oauth_issuer": issuer.url,
        "oauth_jwks_url": issuer.jwks_url,
        "resource_url": RESOURCE,
        "required_scopes": ["mcp"],
    }
    app = build_http_app(make_server(), load_settings(settings))
    operator = issuer.mint(sub="operator", scope="mcpserve:admin")
    user = issuer.mint(sub="alice", scope="mcp")
    expired = issuer.mint(sub="operator", scope="mcpserve:admin", exp=1)
    assert (await request(app, "GET", path="/admin/api/overview", headers=bearer(user))).status == 403
    assert (await request(app, "GET", path="/admin/api/overview", headers=bearer(expired))).status == 401
    reply = await request(app, "GET", path="/admin/api/overview", headers=bearer(operator))
    assert reply.status == 200
    assert reply.json()["identity"]["viewer"] == "operator"
    assert reply.json()["identity"]["authentication"] == ["oauth"]
    assert (await request(app, "GET", path="/admin", headers=basic(operator))).status == 200


async def test_an_unreachable_issuer_is_reported_not_hidden(issuer: LocalIssuer) -> None:
    settings = {
        "auth": "oauth",
        "oauth_issuer": issuer.url,
        "oauth_jwks_url": f"http://127.0.0.1:{free_port()}/jwks",  # nothing listens there
        "resource_url": RESOURCE,
    }
    app = build_http_app(make_server(), load_settings(settings))
    reply = await request(
        app, "GET", path="/admin/api/overview", headers=bearer(issuer.mint(scope="mcpserve:admin"))
    )
    assert reply.status == 503
    assert "error" in reply.json()
