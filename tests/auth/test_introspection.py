"""RFC 7662 introspection of opaque tokens against the local issuer, cached for their lifetime."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import httpx
import pytest

from mcpserve.auth.introspection import Introspector
from mcpserve.errors import ServiceUnavailable, Unauthorized
from tests.auth.app import build_app
from tests.auth.support import call_tool, challenge
from tests.support.clock import FakeClock
from tests.support.issuer import RESOURCE, LocalIssuer, local_issuer

pytestmark = pytest.mark.anyio


def _active(issuer: LocalIssuer, token: str, **claims: object) -> None:
    issuer.opaque[token] = {
        "active": True,
        "sub": "carol",
        "scope": "mcp deploy:write",
        "iss": issuer.url,
        "aud": RESOURCE,
        "exp": int(time.time()) + 60,
        "client_id": "ci",
        **claims,
    }


def _introspector(
    issuer: LocalIssuer, client: httpx.AsyncClient, clock: FakeClock, **options: object
) -> Introspector:
    return Introspector(
        issuer.introspection_url,
        client,
        issuer=issuer.url,
        audience=RESOURCE,
        clock=clock,
        **options,  # type: ignore[arg-type]
    )


async def test_an_active_token_is_cached_until_it_expires(
    issuer: LocalIssuer, client: httpx.AsyncClient
) -> None:
    clock = FakeClock(time.time())
    _active(issuer, "opaque-cached")
    introspector = _introspector(issuer, client, clock, client_id="rs", client_secret="s3")
    principal = await introspector.verify("opaque-cached")
    assert (principal.name, principal.scopes, principal.client_id) == (
        "carol",
        frozenset({"mcp", "deploy:write"}),
        "ci",
    )
    assert await introspector.verify("opaque-cached") == principal
    assert introspector.requests == 1
    # The resource server authenticates to the introspection endpoint (client_secret_basic).
    assert issuer.introspection_auth[-1] == "Basic " + base64.b64encode(b"rs:s3").decode()
    clock.now += 61
    with pytest.raises(Unauthorized):  # expired: asked again, and refused locally
        await introspector.verify("opaque-cached")
    assert introspector.requests == 2


@pytest.mark.parametrize(
    "claims",
    [
        {"active": False},
        {"aud": "https://other.example"},
        {"iss": "https://elsewhere.example"},
        {"sub": None},
    ],
)
async def test_inactive_or_foreign_tokens_are_refused(
    issuer: LocalIssuer, client: httpx.AsyncClient, claims: dict[str, object]
) -> None:
    _active(issuer, "opaque-refused", **claims)
    introspector = _introspector(issuer, client, FakeClock(time.time()))
    for _ in range(2):
        with pytest.raises(Unauthorized) as refused:
            await introspector.verify("opaque-refused")
        assert refused.value.challenge == "invalid_token"
    assert introspector.requests == 1  # the refusal is cached briefly too


async def test_the_cache_is_bounded(issuer: LocalIssuer, client: httpx.AsyncClient) -> None:
    introspector = _introspector(issuer, client, FakeClock(time.time()), max_entries=2)
    for token in ("a1", "a2", "a3"):
        _active(issuer, token)
        await introspector.verify(token)
    await introspector.verify("a3")
    await introspector.verify("a1")  # evicted: asked again
    assert introspector.requests == 4


async def test_an_unreachable_endpoint_is_service_unavailable(client: httpx.AsyncClient) -> None:
    with local_issuer() as gone:
        url = gone.introspection_url
    introspector = Introspector(url, client, issuer="x", audience=RESOURCE)
    with pytest.raises(ServiceUnavailable):
        await introspector.verify("anything")


async def test_opaque_tokens_over_http(issuer: LocalIssuer, tmp_path: Path) -> None:
    calls: list[str] = []
    app = build_app(issuer, tmp_path, calls, oauth_introspection_url=issuer.introspection_url)
    _active(issuer, "opaque-http")
    allowed = await call_tool(app, "deploy", "opaque-http", {"service": "web"})
    assert allowed.json()["result"]["structuredContent"] == {"result": "deployed web"}
    refused = await call_tool(app, "deploy", "opaque-unknown", {"service": "web"})
    assert refused.status == 401
    assert challenge(refused)["error"] == "invalid_token"
    assert calls == ["deploy"]
