"""The gateway's one naming policy: every upstream's names are always prefixed.

Tools and prompts: ``<upstream>__<name>`` (``<upstream>__<renamed>`` with a rename map). Resource
URIs and templates: ``<upstream>+<uri>`` (``files+file:///etc/motd``), a valid URI whose scheme
names the upstream, reversed by removing the prefix. Prefixing is never conditional, so a name a
client has seen never changes when another upstream is added.
"""

from __future__ import annotations

from typing import Final

__all__ = ["SEPARATOR", "served_name", "split_name", "served_uri", "upstream_uri"]

SEPARATOR: Final = "__"
_URI_SEPARATOR: Final = "+"


def served_name(upstream: str, name: str) -> str:
    return f"{upstream}{SEPARATOR}{name}"


def split_name(name: str) -> tuple[str, str] | None:
    """``(upstream, name)`` for a served name, or None when it names no upstream."""
    upstream, separator, rest = name.partition(SEPARATOR)
    return (upstream, rest) if separator and rest else None


def served_uri(upstream: str, uri: str) -> str:
    return f"{upstream}{_URI_SEPARATOR}{uri}"


def upstream_uri(upstream: str, uri: str) -> str | None:
    """The upstream's own URI behind a served one, or None when it is not this upstream's."""
    prefix = upstream + _URI_SEPARATOR
    return uri[len(prefix) :] if uri.startswith(prefix) else None
