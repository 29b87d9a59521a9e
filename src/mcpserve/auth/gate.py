"""The HTTP authentication gate: credential from ``Authorization`` only, scopes per operation.

401 answers carry ``WWW-Authenticate: Bearer`` with the metadata URL and the scopes every request
needs (plus ``error="invalid_token"`` when a token was presented); a malformed credential or one in
the query string is ``invalid_request`` and HTTP 400 (RFC 6750 §3.1); 403 answers carry
``error="insufficient_scope"`` with every scope the operation needs, in one challenge.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import parse_qsl

from mcpserve.auth.authenticator import Authenticator
from mcpserve.auth.challenge import bearer_challenge
from mcpserve.errors import Forbidden, Unauthorized
from mcpserve.principal import Principal
from mcpserve.types import JSONObject

__all__ = ["AuthGate"]

_TOKEN68 = re.compile(r"^[A-Za-z0-9\-._~+/]+=*$")
# OAuth's query and form parameter names for a bearer token (RFC 6750 §2.3), and common variants.
_QUERY_TOKEN_NAMES = frozenset({"access_token", "token", "api_key", "apikey", "key", "auth"})


class AuthGate:
    def __init__(
        self,
        authenticator: Authenticator,
        *,
        resource_metadata_url: str | None,
        required_scopes: frozenset[str] = frozenset(),
        documents: Mapping[str, JSONObject] | None = None,
        close: Callable[[], Awaitable[None]] | None = None,
        readiness: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.authenticator = authenticator
        self.resource_metadata_url = resource_metadata_url
        self.required_scopes = required_scopes
        self.documents = dict(documents or {})
        self._close = close
        # Raises when the token issuer cannot be used (OAuth only); registered as a readiness check.
        self.readiness = readiness

    async def authenticate(self, headers: Mapping[str, str], query_string: bytes) -> Principal:
        """The caller's principal; raises Unauthorized or Forbidden (required scopes missing)."""
        principal = await self.authenticator.authenticate(self.bearer_token(headers, query_string))
        self.authorize(principal, frozenset())
        return principal

    @staticmethod
    def bearer_token(headers: Mapping[str, str], query_string: bytes) -> str:
        """The Bearer credential of a request; raises Unauthorized when it has none or a bad one."""
        if query_string and any(
            name.lower() in _QUERY_TOKEN_NAMES for name, _ in parse_qsl(query_string.decode("latin-1"))
        ):
            raise Unauthorized("Credentials are accepted only in the Authorization header", "invalid_request")
        scheme, _, token = headers.get("authorization", "").strip().partition(" ")
        if scheme.lower() != "bearer":
            # No Bearer credential at all (none, or another scheme): the plain challenge (RFC 6750 §3.1).
            raise Unauthorized("Authentication required")
        token = token.strip()
        if not _TOKEN68.match(token):
            raise Unauthorized("Malformed Authorization header: expected 'Bearer <token>'", "invalid_request")
        return token

    def authorize(self, principal: Principal, needed: frozenset[str]) -> None:
        """Raise Forbidden naming every scope this operation needs unless the principal has them."""
        scopes = self.required_scopes | needed
        if not principal.has_scopes(scopes):
            raise Forbidden("Insufficient scope for this operation", scopes)

    def challenge(self, exc: Unauthorized | Forbidden) -> list[tuple[bytes, bytes]]:
        if isinstance(exc, Forbidden):
            value = bearer_challenge(
                resource_metadata=self.resource_metadata_url,
                scopes=exc.scopes,
                error="insufficient_scope",
                description=exc.message,
            )
        else:
            value = bearer_challenge(
                resource_metadata=self.resource_metadata_url,
                scopes=self.required_scopes,
                error=exc.challenge,
                description=exc.message if exc.challenge else None,
            )
        return [(b"www-authenticate", value.encode("latin-1", "replace"))]

    async def aclose(self) -> None:
        if self._close is not None:
            await self._close()
