"""``WWW-Authenticate: Bearer`` challenges (RFC 6750 §3, RFC 9728 §5.1)."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["bearer_challenge"]


def _quoted(value: str) -> str:
    # quoted-string: no quotes, backslashes or control characters from our own messages.
    return '"' + "".join(c for c in value if c not in '"\\' and c.isprintable()) + '"'


def bearer_challenge(
    *,
    resource_metadata: str,
    scopes: Iterable[str] = (),
    error: str | None = None,
    description: str | None = None,
) -> str:
    """One Bearer challenge; ``scope`` lists every scope given (omitted when there are none)."""
    params = []
    if error:
        params.append(f"error={_quoted(error)}")
    if description:
        params.append(f"error_description={_quoted(description)}")
    scope = " ".join(sorted(set(scopes)))
    if scope:
        params.append(f"scope={_quoted(scope)}")
    params.append(f"resource_metadata={_quoted(resource_metadata)}")
    return "Bearer " + ", ".join(params)
