"""Protocol revisions mcpserve serves, and how each era picks its version.

Revisions are an enumerated set, not an ordered scalar: the 2026-07-28 revision ("modern") is
stateless with a per-request ``_meta`` envelope; the older ones ("legacy") negotiate once in
``initialize`` and keep a session.
"""

from __future__ import annotations

from typing import Final, Literal

__all__ = [
    "MODERN",
    "MODERN_VERSIONS",
    "LEGACY_VERSIONS",
    "LATEST_LEGACY",
    "Era",
    "negotiate_legacy",
]

Era = Literal["modern", "legacy"]

MODERN: Final = "2026-07-28"
MODERN_VERSIONS: Final[tuple[str, ...]] = (MODERN,)
LEGACY_VERSIONS: Final[tuple[str, ...]] = ("2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05")
LATEST_LEGACY: Final = LEGACY_VERSIONS[0]


def negotiate_legacy(requested: object) -> str:
    """Version for an ``initialize`` reply: echo a legacy version we serve, else our newest legacy one.

    A client asking for 2026-07-28 through ``initialize`` is speaking the handshake era, so it
    gets the newest handshake version too (the reference server behaves the same way).
    """
    if isinstance(requested, str) and requested in LEGACY_VERSIONS:
        return requested
    return LATEST_LEGACY
