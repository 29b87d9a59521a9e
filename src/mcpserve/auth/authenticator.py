"""Who a bearer token belongs to: API keys first (a local lookup), then OAuth."""

from __future__ import annotations

from typing import Protocol

from mcpserve.auth.introspection import Introspector
from mcpserve.auth.jwt import JwtVerifier, looks_like_jwt
from mcpserve.auth.keys import ApiKeyAuthenticator
from mcpserve.errors import Unauthorized
from mcpserve.principal import Principal

__all__ = ["Authenticator", "TokenAuthenticator"]


class Authenticator(Protocol):
    async def authenticate(self, token: str) -> Principal:
        """The principal ``token`` stands for; raises Unauthorized (or ServiceUnavailable)."""
        ...


class TokenAuthenticator:
    """Composes the configured methods: API keys, JWT access tokens, introspected opaque tokens."""

    def __init__(
        self,
        *,
        keys: ApiKeyAuthenticator | None = None,
        jwt: JwtVerifier | None = None,
        introspection: Introspector | None = None,
    ) -> None:
        self.keys = keys
        self.jwt = jwt
        self.introspection = introspection

    async def authenticate(self, token: str) -> Principal:
        if self.keys is not None:
            principal = self.keys.lookup(token)
            if principal is not None:
                return principal
        if self.jwt is not None and looks_like_jwt(token):
            return await self.jwt.verify(token)
        if self.introspection is not None:
            return await self.introspection.verify(token)
        raise Unauthorized("Unknown or invalid token", "invalid_token")
