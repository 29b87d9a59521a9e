"""CORS for browser-based MCP clients: allowed origins come from configuration, none by default.

Only origins listed in ``MCPSERVE_CORS_ORIGINS`` get CORS headers, and the runtime adds the same
origins to the Host/Origin guard, so an origin a browser may call from is never refused by the
DNS-rebinding check. Without configured origins this module is not wired at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

__all__ = ["CorsPolicy"]

_ALLOWED_HEADERS: Final = frozenset(
    {
        "accept",
        "authorization",
        "content-type",
        "last-event-id",
        "mcp-method",
        "mcp-name",
        "mcp-protocol-version",
        "mcp-session-id",
        "x-request-id",
    }
)
_PARAM_HEADER_PREFIX: Final = "mcp-param-"
_METHODS: Final = b"GET, POST, DELETE"
# Every response header a browser client needs to read: the session and version, the challenge that
# starts OAuth discovery (RFC 9728), and the rate-limit budget (seed and IETF draft names).
_EXPOSED_HEADERS: Final = (
    "Mcp-Session-Id",
    "MCP-Protocol-Version",
    "X-Request-Id",
    "WWW-Authenticate",
    "Retry-After",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "RateLimit",
    "RateLimit-Policy",
)
_EXPOSED: Final = ", ".join(_EXPOSED_HEADERS).encode("latin-1")
_MAX_AGE: Final = b"600"


def _allowed_header(name: str) -> bool:
    return name in _ALLOWED_HEADERS or name.startswith(_PARAM_HEADER_PREFIX)


class CorsPolicy:
    """Which origins may call the endpoint from a browser, and the headers that say so."""

    def __init__(self, origins: Iterable[str]) -> None:
        cleaned = {o.strip().lower().rstrip("/") for o in origins if o.strip()}
        self.any_origin = "*" in cleaned
        self.origins = frozenset(cleaned - {"*"})

    def allows(self, origin: str) -> bool:
        return self.any_origin or origin.strip().lower().rstrip("/") in self.origins

    def response_headers(self, origin: str) -> list[tuple[bytes, bytes]]:
        """Headers for an actual (non-preflight) response to an allowed ``origin``."""
        return [
            (b"access-control-allow-origin", origin.encode("latin-1")),
            (b"access-control-expose-headers", _EXPOSED),
            (b"vary", b"Origin"),
        ]

    def preflight(
        self, origin: str, method: str | None, requested_headers: str | None
    ) -> tuple[int, list[tuple[bytes, bytes]]]:
        """Status and headers answering an ``OPTIONS`` preflight."""
        if (
            not self.allows(origin)
            or method is None
            or method.strip().upper() not in ("GET", "POST", "DELETE")
        ):
            return 403, [(b"vary", b"Origin")]
        names = [h.strip().lower() for h in (requested_headers or "").split(",") if h.strip()]
        if any(not _allowed_header(name) for name in names):
            return 403, [(b"vary", b"Origin")]
        headers = [
            (b"access-control-allow-origin", origin.encode("latin-1")),
            (b"access-control-allow-methods", _METHODS),
            (b"access-control-max-age", _MAX_AGE),
            (b"vary", b"Origin"),
        ]
        if names:
            headers.append((b"access-control-allow-headers", ", ".join(names).encode("latin-1")))
        return 204, headers
