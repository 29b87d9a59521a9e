"""Turn verified token claims (a JWT payload or an RFC 7662 answer) into a :class:`Principal`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mcpserve.errors import Unauthorized
from mcpserve.principal import Principal

__all__ = ["principal_from_claims", "scopes_of", "audiences_of"]


def scopes_of(claims: Mapping[str, Any]) -> frozenset[str]:
    """RFC 8693/9068 ``scope`` (space-separated) or the common ``scp`` list."""
    scope = claims.get("scope")
    if isinstance(scope, str):
        return frozenset(scope.split())
    scp = claims.get("scp")
    if isinstance(scp, list):
        return frozenset(s for s in scp if isinstance(s, str))
    if isinstance(scp, str):
        return frozenset(scp.split())
    return frozenset()


def audiences_of(claims: Mapping[str, Any]) -> list[str]:
    aud = claims.get("aud")
    if isinstance(aud, str):
        return [aud]
    if isinstance(aud, list):
        return [a for a in aud if isinstance(a, str)]
    return []


def principal_from_claims(claims: Mapping[str, Any], issuer: str | None) -> Principal:
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise Unauthorized("Token has no subject", "invalid_token")
    client_id = claims.get("client_id", claims.get("azp"))
    return Principal(
        name=subject,
        scopes=scopes_of(claims),
        issuer=issuer,
        client_id=client_id if isinstance(client_id, str) else None,
    )
