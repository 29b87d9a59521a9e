"""Readiness check ``oauth``: the issuer's keys (and introspection) usable, answered from the cache."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import orjson
import pytest
from click.testing import CliRunner

from mcpserve.auth.introspection import Introspector
from mcpserve.auth.jwks import JwksCache
from mcpserve.cli import main
from mcpserve.errors import ServiceUnavailable
from tests.auth.app import build_app
from tests.support.asgi import request
from tests.support.clock import FakeClock
from tests.support.issuer import RESOURCE, local_issuer

pytestmark = pytest.mark.anyio

DEAD = "http://127.0.0.1:1"  # nothing listens on port 1


async def test_probes_are_answered_from_the_cache(client: httpx.AsyncClient) -> None:
    clock = FakeClock()
    with local_issuer() as issuer:
        cache = JwksCache(issuer.jwks_url, client, ttl=60, refresh_interval=10, clock=clock)
        await cache.ready()  # nothing cached: fetched once
        for _ in range(3):
            await cache.ready()
        assert issuer.hits["/jwks"] == 1
        clock.now += 60  # past the TTL: the next probe refreshes, once
        await cache.ready()
        await cache.ready()
        assert issuer.hits["/jwks"] == 2


async def test_unfetchable_keys_are_not_ready_with_the_cause(client: httpx.AsyncClient) -> None:
    clock = FakeClock()
    cache = JwksCache(f"{DEAD}/jwks", client, ttl=60, refresh_interval=10, clock=clock)
    with pytest.raises(ServiceUnavailable, match=r"not been fetched \(last attempt: ConnectError\)"):
        await cache.ready()
    with pytest.raises(ServiceUnavailable):
        await cache.ready()
    assert cache.fetches == 1  # probes retry at most once per refresh interval
    clock.now += 10
    with pytest.raises(ServiceUnavailable):
        await cache.ready()
    assert cache.fetches == 2


async def test_a_failing_refresh_is_tolerated_until_the_keys_are_twice_the_ttl_old(
    client: httpx.AsyncClient,
) -> None:
    clock = FakeClock()
    with local_issuer() as issuer:
        cache = JwksCache(issuer.jwks_url, client, ttl=60, refresh_interval=10, clock=clock)
        await cache.ready()
    clock.now += 60  # the issuer is gone; the refresh fails but the cached keys still serve
    await cache.ready()
    clock.now += 60
    with pytest.raises(
        ServiceUnavailable, match=r"120 s old; refreshing fails \(last attempt: ConnectError\)"
    ):
        await cache.ready()


async def test_a_key_set_without_a_usable_key_is_not_ready(client: httpx.AsyncClient) -> None:
    with local_issuer() as issuer:
        issuer.raw_jwks = {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}
        with pytest.raises(ServiceUnavailable, match="no usable signature key"):
            await JwksCache(issuer.jwks_url, client).ready()


async def test_introspection_probes_only_without_a_recent_outcome(client: httpx.AsyncClient) -> None:
    clock = FakeClock()
    with local_issuer() as issuer:
        introspector = Introspector(
            issuer.introspection_url, client, issuer=issuer.url, audience=RESOURCE, clock=clock
        )
        await introspector.ready()
        await introspector.ready()
        assert issuer.hits["/introspect"] == 1  # one probe with a random token, answered inactive
        clock.now += 30
        await introspector.ready()
        assert issuer.hits["/introspect"] == 2
    clock.now += 30
    with pytest.raises(ServiceUnavailable, match=r"token introspection fails \(ConnectError\)"):
        await introspector.ready()


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.upper().startswith("MCPSERVE_") or key.upper() == "MCP_API_KEYS":
            monkeypatch.delenv(key)


@pytest.mark.usefixtures("clean_environment")
def test_check_exits_1_when_the_issuer_keys_are_unavailable() -> None:
    env = {
        "MCPSERVE_AUTH": "oauth",
        "MCPSERVE_OAUTH_ISSUER": "https://a.example",
        "MCPSERVE_OAUTH_JWKS_URL": f"{DEAD}/jwks",
        "MCPSERVE_RESOURCE_URL": "https://mcp.example/mcp",
        "MCPSERVE_RATE_LIMIT_PER_MINUTE": "0",
        "MCPSERVE_RATE_LIMIT_PER_HOUR": "0",
    }
    result = CliRunner().invoke(main, ["check", "tests/transports/stdio_app.py"], env=env)
    assert result.exit_code == 1, result.output
    report = orjson.loads(result.stdout)
    assert report["status"] == "not ready"
    assert report["checks"]["oauth"] == (
        "ServiceUnavailable: the issuer's JWK Set has not been fetched (last attempt: ConnectError)"
    )


async def test_ready_reports_the_issuer(tmp_path: Path) -> None:
    with local_issuer() as issuer:
        app = build_app(issuer, tmp_path, [], rate_limit_per_minute=0, rate_limit_per_hour=0)
        ready = await request(app, "GET", path="/ready")
        assert (ready.status, orjson.loads(ready.body)["checks"]["oauth"]) == (200, "ok")
        dead = build_app(issuer, tmp_path, [], oauth_jwks_url=f"{DEAD}/jwks", rate_limit_per_minute=0)
        down = await request(dead, "GET", path="/ready")
        assert down.status == 503
        assert "JWK Set has not been fetched" in orjson.loads(down.body)["checks"]["oauth"]
        opaque_only = build_app(
            issuer,
            tmp_path,
            [],
            oauth_jwks_url=None,
            oauth_introspection_url=issuer.introspection_url,
            rate_limit_per_minute=0,
        )
        assert (await request(opaque_only, "GET", path="/ready")).status == 200
        assert issuer.hits["/introspect"] == 1
