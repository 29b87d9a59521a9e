"""The JWKS cache against a real loopback issuer: TTL, rotation, bounded refetching, failures."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from mcpserve.auth.jwks import JwksCache
from mcpserve.errors import ServiceUnavailable
from tests.support.clock import FakeClock
from tests.support.issuer import LocalIssuer, local_issuer, new_key

pytestmark = pytest.mark.anyio


@pytest.fixture
def issuer() -> Iterator[LocalIssuer]:
    with local_issuer() as running:
        yield running


async def test_unknown_kids_refetch_at_most_once_per_interval(
    issuer: LocalIssuer, client: httpx.AsyncClient
) -> None:
    clock = FakeClock()
    cache = JwksCache(issuer.jwks_url, client, ttl=300, refresh_interval=10, clock=clock)
    assert (await cache.key(issuer.key.kid)) is not None
    for kid in ("made-up-1", "made-up-2", "made-up-3"):
        assert await cache.key(kid) is None
    # One initial fetch; the made-up kids arrived within the interval of it.
    assert issuer.hits["/jwks"] == 1
    clock.now += 10
    assert await cache.key("made-up-4") is None
    assert await cache.key("made-up-5") is None
    assert issuer.hits["/jwks"] == 2


async def test_rotation_is_found_on_the_next_allowed_refetch(
    issuer: LocalIssuer, client: httpx.AsyncClient
) -> None:
    clock = FakeClock()
    cache = JwksCache(issuer.jwks_url, client, ttl=300, refresh_interval=10, clock=clock)
    old = issuer.key
    assert await cache.key(old.kid) is not None
    new = issuer.rotate()
    clock.now += 10
    found = await cache.key(new.kid)
    assert found is not None and found.kid == new.kid
    assert await cache.key(old.kid) is None


async def test_keys_expire_after_the_ttl(issuer: LocalIssuer, client: httpx.AsyncClient) -> None:
    clock = FakeClock()
    cache = JwksCache(issuer.jwks_url, client, ttl=60, refresh_interval=1, clock=clock)
    await cache.key(issuer.key.kid)
    clock.now += 30
    await cache.key(issuer.key.kid)
    assert issuer.hits["/jwks"] == 1
    clock.now += 30
    await cache.key(issuer.key.kid)
    assert issuer.hits["/jwks"] == 2


async def test_a_failed_refresh_keeps_the_last_good_keys(client: httpx.AsyncClient) -> None:
    clock = FakeClock()
    with local_issuer() as issuer:
        cache = JwksCache(issuer.jwks_url, client, ttl=60, refresh_interval=1, clock=clock)
        kid = issuer.key.kid
        assert await cache.key(kid) is not None
    clock.now += 120  # stale, and the issuer is gone
    assert await cache.key(kid) is not None


async def test_no_keys_at_all_is_service_unavailable(client: httpx.AsyncClient) -> None:
    with local_issuer() as issuer:
        url = issuer.jwks_url
    cache = JwksCache(url, client)
    with pytest.raises(ServiceUnavailable):
        await cache.key("any")


async def test_only_public_signature_keys_are_taken(issuer: LocalIssuer, client: httpx.AsyncClient) -> None:
    private = new_key("private")
    published = issuer.key.as_dict(private=False)
    issuer.published = []
    documents = [
        {"kty": "oct", "k": "c2VjcmV0", "kid": "shared"},
        {**published, "kid": "encryption", "use": "enc"},
        {**private.as_dict(private=True)},
        {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
        "not a key",
        {**published, "kid": "good"},
    ]

    cache = JwksCache(issuer.jwks_url, client)
    issuer.raw_jwks = {"keys": documents}
    assert await cache.key("good") is not None
    for kid in ("shared", "encryption", "private", "broken"):
        assert cache._find(kid) is None


async def test_a_kidless_token_matches_only_a_single_published_key(
    issuer: LocalIssuer, client: httpx.AsyncClient
) -> None:
    cache = JwksCache(issuer.jwks_url, client, refresh_interval=0)
    assert await cache.key(None) is not None
    issuer.published = [issuer.key, new_key()]
    cache = JwksCache(issuer.jwks_url, client, refresh_interval=0)
    assert await cache.key(None) is None


async def test_a_document_that_is_not_a_jwk_set_is_a_failed_fetch(
    issuer: LocalIssuer, client: httpx.AsyncClient
) -> None:
    issuer.raw_jwks = ["not", "a", "set"]
    with pytest.raises(ServiceUnavailable):
        await JwksCache(issuer.jwks_url, client).key("x")
