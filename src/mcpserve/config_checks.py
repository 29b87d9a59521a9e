"""Validation rules for settings: value forms (networks, origins, URLs) and rules across fields.

Pure functions over values, so :mod:`mcpserve.config` stays the only module reading the
environment. Field validators raise ``ValueError`` (pydantic names the field); cross-field rules
return ``(field, message)`` pairs that ``load_settings`` turns into a :class:`ConfigError` naming
the variable the operator set.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from mcpserve.config import Settings

__all__ = [
    "check_network",
    "check_origin",
    "check_database_url",
    "redact_url",
    "is_loopback",
    "cross_checks",
]

_DATABASE_SCHEMES = ("sqlite", "postgres", "postgresql")


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
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        raise ValueError(f"{value!r} is not an origin of the form https://host[:port]")
    if parts.query or parts.fragment or parts.username:
        raise ValueError(f"{value!r} is not an origin of the form https://host[:port]")
    return value


def check_database_url(value: str) -> str:
    """``sqlite:///path`` or ``postgresql://[user[:password]@]host[:port]/database``."""
    parts = urlsplit(value)
    scheme = parts.scheme.lower()
    if scheme not in _DATABASE_SCHEMES:
        raise ValueError(
            f"unsupported database URL scheme {parts.scheme or '(none)'!r}: "
            "use sqlite:///path or postgresql://host/database"
        )
    if scheme == "sqlite":
        if parts.netloc or not parts.path.strip("/"):
            raise ValueError("a SQLite URL has the form sqlite:///path/to/file.db")
        return value
    try:
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        raise ValueError("the database URL has an invalid port") from None
    if not parts.hostname and "host=" not in parts.query:
        raise ValueError("a PostgreSQL URL needs a host: postgresql://host[:port]/database")
    return value


def redact_url(value: str) -> str:
    """The URL with any password in its user-info replaced by ``***``."""
    parts = urlsplit(value)
    if parts.password is None:
        return value
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def cross_checks(settings: Settings) -> list[tuple[str, str]]:
    """Rules that involve several settings; each problem names the field to change."""
    problems: list[tuple[str, str]] = []
    if settings.transport == "http" and settings.auth is None and not is_loopback(settings.host):
        problems.append(
            (
                "auth",
                f"serving HTTP on non-loopback address {settings.host!r} without authentication: "
                "set MCPSERVE_AUTH to keys or oauth (or to none to accept unauthenticated access explicitly)",
            )
        )
    if settings.metrics_port is not None and settings.metrics_port == settings.port:
        problems.append(("metrics_port", f"must differ from the main port ({settings.port})"))
    return problems
