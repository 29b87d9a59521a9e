"""RFC 7662 token introspection for opaque access tokens, cached for each token's lifetime.

Entries are keyed by the token's SHA-256 digest (the token itself is never stored) and kept until
the token's ``exp``; inactive answers are kept briefly so a flood of bad tokens stays cheap.

:meth:`Introspector.ready` answers readiness probes from the outcome of the latest introspection
call; only when there has been none for ``probe_interval`` seconds does it ask the endpoint about a
random token (RFC 7662 answers ``active: false``), so probes cost the issuer at most one request
per interval and nothing while real traffic keeps the outcome fresh.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable

import httpx

from mcpserve.auth.claims import audiences_of, principal_from_claims
from mcpserve.errors import ServiceUnavailable, Unauthorized
from mcpserve.principal import Principal
from mcpserve.urls import redact_url

__all__ = ["Introspector"]

logger = logging.getLogger("mcpserve.auth")


class Introspector:
    def __init__(
        self,
        url: str,
        client: httpx.AsyncClient,
        *,
        issuer: str,
        audience: str,
        client_id: str | None = None,
        client_secret: str | None = None,
        max_entries: int = 10_000,
        inactive_ttl: float = 10.0,
        default_ttl: float = 60.0,
        probe_interval: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url
        self._client = client
        self.issuer = issuer
        self.audience = audience
        self._auth: httpx.BasicAuth | None = (
            httpx.BasicAuth(client_id, client_secret or "") if client_id else None
        )
        self._max_entries = max_entries
        self._inactive_ttl = inactive_ttl
        self._default_ttl = default_ttl
        self._clock = clock
        self._cache: OrderedDict[bytes, tuple[float, Principal | None]] = OrderedDict()
        self._probe_interval = probe_interval
        self._outcome_at = float("-inf")
        self._failure: str | None = None
        self.requests = 0

    async def ready(self) -> None:
        """Raise :class:`ServiceUnavailable` with the reason if the endpoint is failing."""
        now = self._clock()
        if now - self._outcome_at >= self._probe_interval:
            with contextlib.suppress(ServiceUnavailable):  # the failure is recorded; reported below
                await self._introspect(secrets.token_urlsafe(32), now)
        if self._failure is not None:
            raise ServiceUnavailable(f"token introspection fails ({self._failure})")

    async def verify(self, token: str) -> Principal:
        digest = hashlib.sha256(token.encode()).digest()
        now = self._clock()
        cached = self._cache.get(digest)
        if cached is not None and now < cached[0]:
            principal = cached[1]
        else:
            principal, until = await self._introspect(token, now)
            self._remember(digest, until, principal)
        if principal is None:
            raise Unauthorized("Token is not active", "invalid_token")
        return principal

    def _remember(self, digest: bytes, until: float, principal: Principal | None) -> None:
        self._cache[digest] = (until, principal)
        self._cache.move_to_end(digest)
        while len(self._cache) > self._max_entries:
            self._cache.popitem(last=False)

    async def _introspect(self, token: str, now: float) -> tuple[Principal | None, float]:
        self.requests += 1
        try:
            response = await self._client.post(
                self.url,
                data={"token": token, "token_type_hint": "access_token"},
                auth=self._auth or httpx.USE_CLIENT_DEFAULT,
                headers={"accept": "application/json"},
            )
            response.raise_for_status()
            answer = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            self._outcome_at = self._clock()
            self._failure = (
                f"HTTP {exc.response.status_code}"
                if isinstance(exc, httpx.HTTPStatusError)
                else type(exc).__name__
            )
            logger.warning("token introspection at %s failed: %s", redact_url(self.url), self._failure)
            raise ServiceUnavailable(
                "Token introspection is unavailable; retry later", retry_after=5
            ) from None
        self._outcome_at, self._failure = self._clock(), None
        inactive = None, now + self._inactive_ttl
        if not isinstance(answer, dict) or answer.get("active") is not True:
            return inactive
        expires = answer.get("exp")
        if isinstance(expires, int | float) and not isinstance(expires, bool) and expires <= now:
            return inactive
        if answer.get("iss", self.issuer) != self.issuer:
            return inactive
        if "aud" in answer and self.audience not in audiences_of(answer):
            return inactive
        try:
            principal = principal_from_claims(answer, self.issuer)
        except Unauthorized:
            return inactive
        until = float(expires) if isinstance(expires, int | float) else now + self._default_ttl
        return principal, until
