"""JWT verification details: claims mapping, malformed tokens, algorithm/key agreement."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator

import httpx
import pytest

from mcpserve.auth.claims import principal_from_claims, scopes_of
from mcpserve.auth.jwks import JwksCache
from mcpserve.auth.jwt import JwtVerifier
from mcpserve.errors import Unauthorized
from tests.support.issuer import RESOURCE, LocalIssuer

pytestmark = pytest.mark.anyio


@pytest.fixture
async def verifier(issuer: LocalIssuer) -> AsyncIterator[JwtVerifier]:
    async with httpx.AsyncClient(trust_env=False) as client:
        yield JwtVerifier(JwksCache(issuer.jwks_url, client), issuer=issuer.url, audience=RESOURCE)


@pytest.mark.parametrize(
    ("claims", "scopes"),
    [
        ({"scope": "a b"}, {"a", "b"}),
        ({"scp": ["a", 3, "b"]}, {"a", "b"}),
        ({"scp": "a b"}, {"a", "b"}),
        ({"scp": 7}, set()),
        ({}, set()),
    ],
)
def test_scopes_from_either_claim(claims: dict[str, object], scopes: set[str]) -> None:
    assert scopes_of(claims) == scopes


def test_a_subjectless_token_is_refused_and_azp_names_the_client() -> None:
    with pytest.raises(Unauthorized, match="no subject"):
        principal_from_claims({"sub": ""}, "iss")
    assert principal_from_claims({"sub": "s", "azp": "app"}, "iss").client_id == "app"


def test_only_asymmetric_algorithms_can_be_allowed() -> None:
    with pytest.raises(ValueError, match="HS256"):
        JwtVerifier(None, issuer="i", audience="a", algorithms=["RS256", "HS256"])  # type: ignore[arg-type]


def _forged(header: dict[str, object], payload: str = "e30") -> str:
    encoded = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    return f"{encoded}.{payload}.c2ln"


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("a.b.c", "Malformed token"),
        (_forged({"alg": "RS256", "kid": 5}), "Malformed token"),
        (_forged({"alg": "ES256", "kid": "nope"}), "Token signed with an unknown key"),
    ],
)
async def test_malformed_tokens(verifier: JwtVerifier, token: str, message: str) -> None:
    with pytest.raises(Unauthorized, match=message):
        await verifier.verify(token)


async def test_the_algorithm_must_fit_the_key(verifier: JwtVerifier, issuer: LocalIssuer) -> None:
    """An ES256 header naming the issuer's RSA key is refused before any signature check."""
    with pytest.raises(Unauthorized, match="does not fit its key"):
        await verifier.verify(_forged({"alg": "ES256", "kid": issuer.key.kid}))


async def test_a_token_without_exp_is_refused(verifier: JwtVerifier, issuer: LocalIssuer) -> None:
    with pytest.raises(Unauthorized, match="claim rejected: exp"):
        await verifier.verify(issuer.mint(exp=None))
