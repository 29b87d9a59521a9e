"""JWT access tokens (RFC 9068) verified with joserfc against the issuer's JWKS.

Only asymmetric algorithms from an explicit allow-list are accepted; the algorithm must also
fit the key the ``kid`` names, so an HS256 token "signed" with an RSA public key never verifies,
and ``alg: none`` is refused before any key is looked at.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, Final

from joserfc import jws, jwt
from joserfc.errors import ExpiredTokenError, InvalidClaimError, JoseError, MissingClaimError
from joserfc.jwt import JWTClaimsRegistry

from mcpserve.auth.claims import principal_from_claims
from mcpserve.auth.jwks import JwksCache
from mcpserve.errors import Unauthorized
from mcpserve.principal import Principal

__all__ = ["ASYMMETRIC_ALGORITHMS", "JwtVerifier", "looks_like_jwt"]

ASYMMETRIC_ALGORITHMS: Final = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
_KEY_TYPES: Final = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2


def _invalid(description: str) -> Unauthorized:
    return Unauthorized(description, "invalid_token")


class JwtVerifier:
    def __init__(
        self,
        jwks: JwksCache,
        *,
        issuer: str,
        audience: str,
        algorithms: Iterable[str] = ASYMMETRIC_ALGORITHMS,
        leeway: int = 30,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.algorithms = frozenset(algorithms)
        unsafe = self.algorithms - ASYMMETRIC_ALGORITHMS
        if unsafe:
            raise ValueError(f"not asymmetric signature algorithms: {', '.join(sorted(unsafe))}")
        self.jwks = jwks
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self._clock = clock

    async def verify(self, token: str) -> Principal:
        try:
            header = jws.extract_compact(token.encode()).protected
        except (JoseError, ValueError, UnicodeError):
            raise _invalid("Malformed token") from None
        alg, kid = header.get("alg"), header.get("kid")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise _invalid("Token signing algorithm not allowed")
        if kid is not None and not isinstance(kid, str):
            raise _invalid("Malformed token")
        key = await self.jwks.key(kid)
        if key is None:
            raise _invalid("Token signed with an unknown key")
        if key.key_type != _KEY_TYPES[alg[:2]]:
            raise _invalid("Token signing algorithm does not fit its key")
        try:
            claims = jwt.decode(token, key, algorithms=[alg]).claims
        except (JoseError, ValueError):
            raise _invalid("Token signature is invalid") from None
        self._check_claims(claims)
        return principal_from_claims(claims, self.issuer)

    def _check_claims(self, claims: dict[str, Any]) -> None:
        registry = JWTClaimsRegistry(
            now=int(self._clock()),
            leeway=self.leeway,
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": self.audience},
            exp={"essential": True},
        )
        try:
            registry.validate(claims)
        except ExpiredTokenError:
            raise _invalid("Token has expired") from None
        except (MissingClaimError, InvalidClaimError) as exc:
            if exc.claim in {"nbf", "iat"}:
                raise _invalid("Token is not valid yet") from None
            raise _invalid(f"Token claim rejected: {exc.claim}") from None
        except JoseError:  # pragma: no cover - the registry raises only the claim errors above
            raise _invalid("Token rejected") from None
