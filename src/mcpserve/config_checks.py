"""Validation rules for settings: value forms (networks, origins) and rules across fields.

Pure functions over values, so :mod:`mcpserve.config` stays the only module reading the
environment. Field validators raise ``ValueError`` (pydantic names the field); cross-field rules
return ``(field, message)`` pairs that ``load_settings`` turns into a :class:`ConfigError` naming
the variable the operator set.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from mcpserve.config import Settings

__all__ = ["check_network", "check_origin", "cross_checks"]


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


def cross_checks(settings: Settings) -> list[tuple[str, str]]:
    """Rules that involve several settings; each problem names the field to change.

    (Authentication on a non-loopback bind is checked where authentication is wired:
    :func:`mcpserve.auth.setup.build_auth_gate`.)
    """
    problems: list[tuple[str, str]] = []
    if settings.metrics_port is not None and settings.metrics_port == settings.port:
        problems.append(("metrics_port", f"must differ from the main port ({settings.port})"))
    return problems
