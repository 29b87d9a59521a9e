"""Showing URLs without their secrets: for configuration output, logs and readiness reasons."""

from __future__ import annotations

import re
from typing import Final

__all__ = ["MASK", "redact_url", "http_url"]

MASK: Final = "**********"
_PASSWORD_PARAMETER: Final = re.compile(r"(?P<name>[?&]password=)[^&#]*", re.IGNORECASE)


def redact_url(url: str) -> str:
    """``url`` with the password masked: in the user-info (``user:pw@``) and in a ``password=``
    query parameter. The authority ends at the first ``/``, ``?`` or ``#`` and the user-info at the
    last ``@`` before it, as ``urllib.parse`` and the clients that use these URLs read them, so a
    password holding ``@`` is masked whole."""
    scheme, separator, rest = url.partition("://")
    if separator:
        ends = [i for i in (rest.find(c) for c in "/?#") if i >= 0]
        end = min(ends, default=len(rest))
        userinfo, at, host = rest[:end].rpartition("@")
        if at and ":" in userinfo:
            user = userinfo.partition(":")[0]
            rest = f"{user}:{MASK}@{host}{rest[end:]}"
        url = f"{scheme}://{rest}"
    return _PASSWORD_PARAMETER.sub(lambda m: m.group("name") + MASK, url)


def http_url(host: str, port: int, path: str = "", scheme: str = "http") -> str:
    """``http://host:port/path`` (or ``https://``), an IPv6 address in brackets."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}{path}"
