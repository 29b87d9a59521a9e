"""An issuer's signing keys: fetched asynchronously, cached, refreshed on rotation.

The key set is refetched when it is older than ``ttl``, and when a token names a ``kid`` the
cache does not hold (the issuer rotated), but never more often than once per
``refresh_interval``: tokens with made-up ``kid`` values cannot turn into a flood of fetches.
If a fetch fails the last good key set stays in use.

:meth:`JwksCache.ready` answers readiness probes from the cache: it fetches only when nothing is
cached or the keys are past their TTL (still at most once per ``refresh_interval``), and fails
when no key set was ever fetched, the set holds no usable key, or refreshing has been failing so
long that the keys are more than twice the TTL old.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import anyio
import httpx
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, JWKRegistry, OKPKey, RSAKey

from mcpserve.errors import ServiceUnavailable
from mcpserve.urls import redact_url

__all__ = ["JwksCache", "SigningKey"]

logger = logging.getLogger("mcpserve.auth")

SigningKey = RSAKey | ECKey | OKPKey
_MAX_JWKS_BYTES = 512 * 1024


def _signing_keys(document: Any) -> list[SigningKey]:
    """Asymmetric signature keys from a JWKS document; anything else (oct, enc, junk) is skipped."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWK Set")
    keys: list[SigningKey] = []
    for entry in document["keys"]:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        if entry.get("kty") not in {"RSA", "EC", "OKP"} or "d" in entry:
            continue  # never a shared secret, never a private key published by mistake
        try:
            key = JWKRegistry.import_key(entry)
        except (JoseError, ValueError, TypeError):
            continue
        if isinstance(key, RSAKey | ECKey | OKPKey):
            keys.append(key)
    return keys


class JwksCache:
    def __init__(
        self,
        url: str,
        client: httpx.AsyncClient,
        *,
        ttl: float = 300.0,
        refresh_interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self._client = client
        self._ttl = ttl
        self._refresh_interval = refresh_interval
        self._clock = clock
        self._keys: list[SigningKey] | None = None
        self._fetched_at = float("-inf")
        self._attempted_at = float("-inf")
        self._lock = anyio.Lock()
        self._last_error: str | None = None
        self.fetches = 0

    async def key(self, kid: str | None) -> SigningKey | None:
        """The key a token's ``kid`` names, or None if the issuer does not publish it."""
        now = self._clock()
        if self._keys is None or (now - self._fetched_at >= self._ttl and self._may_refresh(now)):
            await self._refresh()
        key = self._find(kid)
        if key is None and self._may_refresh(now):
            await self._refresh()
            key = self._find(kid)
        return key

    async def ready(self) -> None:
        """Raise :class:`ServiceUnavailable` with the reason unless usable keys are cached."""
        now = self._clock()
        if (self._keys is None or now - self._fetched_at >= self._ttl) and self._may_refresh(now):
            with contextlib.suppress(ServiceUnavailable):  # reported below, with the cause
                await self._refresh()
        cause = f" (last attempt: {self._last_error})" if self._last_error else ""
        if self._keys is None:
            raise ServiceUnavailable(f"the issuer's JWK Set has not been fetched{cause}")
        if not self._keys:
            raise ServiceUnavailable("the issuer's JWK Set holds no usable signature key")
        age = self._clock() - self._fetched_at
        if age >= 2 * self._ttl:
            raise ServiceUnavailable(f"the cached JWK Set is {age:.0f} s old; refreshing fails{cause}")

    def _may_refresh(self, now: float) -> bool:
        return now - self._attempted_at >= self._refresh_interval

    def _find(self, kid: str | None) -> SigningKey | None:
        keys = self._keys or []
        if kid is None:  # allowed only when the issuer publishes a single key
            return keys[0] if len(keys) == 1 else None
        return next((k for k in keys if k.kid == kid), None)

    async def _refresh(self) -> None:
        started = self._clock()
        async with self._lock:
            if self._attempted_at >= started:
                return  # another request refreshed while this one waited
            self._attempted_at = self._clock()
            self.fetches += 1
            try:
                response = await self._client.get(self.url, headers={"accept": "application/json"})
                response.raise_for_status()
                if len(response.content) > _MAX_JWKS_BYTES:
                    raise ValueError("JWK Set too large")
                keys = _signing_keys(response.json())
            except (httpx.HTTPError, ValueError) as exc:
                self._last_error = _failure(exc)
                logger.warning(
                    "fetching the JWK Set from %s failed: %s", redact_url(self.url), self._last_error
                )
                if self._keys is None:
                    raise ServiceUnavailable(
                        "The token issuer's keys are unavailable; retry later", retry_after=5
                    ) from None
                return
            self._keys = keys
            self._fetched_at = self._attempted_at
            self._last_error = None


def _failure(exc: Exception) -> str:
    """What went wrong, without the URL an httpx message repeats (it may hold a password)."""
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    if isinstance(exc, httpx.HTTPError):
        return type(exc).__name__
    return f"{type(exc).__name__}: {exc}"[:120]
