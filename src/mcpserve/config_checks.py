"""Validation rules for settings: value forms (networks, origins) and rules across fields.

Pure functions over values, so :mod:`mcpserve.config` stays the only module reading the
environment. Field validators raise ``ValueError`` (pydantic names the field); cross-field rules
return ``(field, message)`` pairs that ``load_settings`` turns into a :class:`ConfigError` naming
the variable the operator set.
"""

from __future__ import annotations

import ipaddress
import re
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from mcpserve.config import Settings

__all__ = [
    "check_bearer_tokens",
    "check_http_url",
    "check_network",
    "check_origin",
    "cross_checks",
    "is_loopback_host",
]

_LOOPBACK_NAMES = frozenset({"localhost"})
# What a Bearer credential can carry (RFC 6750 b64token), the form the auth gate accepts.
_BEARER_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


def check_bearer_tokens(tokens: list[str]) -> None:
    """Refuse keys no client can send as ``Authorization: Bearer <key>``: they would pass start-up
    and never authenticate. The message counts the keys, never shows one."""
    unusable = sum(_BEARER_TOKEN.fullmatch(token) is None for token in tokens)
    if unusable:
        raise ValueError(
            f"{unusable} of {len(tokens)} keys contain characters a Bearer token cannot carry "
            "(allowed: letters, digits, - . _ ~ + / and trailing =); make keys with `mcpserve keys new`"
        )


def check_network(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address or CIDR network (e.g. 10.0.0.0/8)") from None
    return value


def check_origin(value: str) -> str:
    """``*`` or ``scheme://host[:port]``: what browsers send in the Origin header."""
    if value == "*":
        return value
    parts = urlsplit(value)
    try:
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        raise ValueError(f"{value!r} has an invalid port") from None
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or parts.username
    ):
        raise ValueError(f"{value!r} is not an origin of the form https://host[:port]")
    return value


def is_loopback_host(host: str) -> bool:
    """``localhost``, 127.0.0.0/8 or ::1 (brackets allowed): traffic that never leaves the machine."""
    name = host.strip("[]").lower()
    if name in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_http_url(value: str, *, identifier: bool = False) -> str:
    """An absolute ``https://`` URL; ``http://`` only for loopback hosts (a local issuer in tests).

    ``identifier``: an OAuth issuer identifier (RFC 8414 §2), so also no user-info, query or
    fragment. Messages describe the problem without repeating the URL, which may hold a password.
    """
    if value != value.strip() or any(c.isspace() for c in value):
        raise ValueError("must be a URL without spaces")
    parts = urlsplit(value)
    try:
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        raise ValueError("the port is not a number from 0 to 65535") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        shown = f"scheme {scheme[:10]!r}" if scheme and parts.netloc else "no scheme or host"
        raise ValueError(f"must be an absolute https:// URL (got {shown})")
    if scheme == "http" and not is_loopback_host(parts.hostname):
        raise ValueError("must use https:// (http:// is accepted only for localhost, 127.0.0.1 and ::1)")
    if parts.fragment or "#" in value:
        raise ValueError("must not have a #fragment")
    if identifier and (parts.query or parts.username is not None or parts.password is not None):
        raise ValueError("an issuer identifier has no user-info or query (RFC 8414)")
    return value


def cross_checks(settings: Settings) -> list[tuple[str, str]]:
    """Rules that involve several settings; each problem names the field to change.

    (Authentication on a non-loopback bind is checked where authentication is wired:
    :func:`mcpserve.auth_setup.build_auth_gate`.)
    """
    problems: list[tuple[str, str]] = []
    if settings.metrics_port is not None and settings.metrics_port == settings.port:
        problems.append(("metrics_port", f"must differ from the main port ({settings.port})"))
    if (
        settings.transport == "stdio"
        and settings.tracing_enabled
        and settings.otel_traces_exporter == "console"
    ):
        problems.append(
            ("otel_traces_exporter", "console writes spans to stdout, which carries the protocol on stdio")
        )
    return problems
