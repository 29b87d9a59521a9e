"""``WWW-Authenticate: Bearer`` challenges (RFC 6750 §3, RFC 9728 §5.1)."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["bearer_challenge"]


def _quoted(value: str) -> str:
    # quoted-string: no quotes, backslashes or control characters from our own messages.
    return '"' + "".join(c for c in value if c not in '"\\' and c.isprintable()) + '"'


def bearer_challenge(
    *,
    resource_metadata: str | None,
    scopes: Iterable[str] = (),
    error: str | None = None,
    description: str | None = None,
) -> str:
    """One Bearer challenge; ``scope`` lists every scope given (omitted when there are none).

    ``resource_metadata`` is None without OAuth: there is no authorization server to discover."""
    params = []
    if error:
        params.append(f"error={_quoted(error)}")
    if description:
        params.append(f"error_description={_quoted(description)}")
    scope = " ".join(sorted(set(scopes) - {"offline_access"}))  # never a resource's scope (MCP §17)
    if scope:
        params.append(f"scope={_quoted(scope)}")
    if resource_metadata:
        params.append(f"resource_metadata={_quoted(resource_metadata)}")
    return "Bearer " + ", ".join(params) if params else "Bearer"
