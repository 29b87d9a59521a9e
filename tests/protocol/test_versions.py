"""Which protocol revisions are served, and how ``initialize`` picks its version."""

from __future__ import annotations

from typing import Any

import pytest

from mcpserve.protocol.versions import (
    LATEST_LEGACY,
    LEGACY_VERSIONS,
    MODERN,
    MODERN_VERSIONS,
    negotiate_legacy,
)


def test_modern_and_legacy_revisions_are_disjoint_and_complete() -> None:
    assert MODERN == "2026-07-28"
    assert MODERN_VERSIONS == ("2026-07-28",)
    assert LEGACY_VERSIONS == ("2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05")
    assert LATEST_LEGACY == "2025-11-25"
    assert not set(MODERN_VERSIONS) & set(LEGACY_VERSIONS)


@pytest.mark.parametrize("version", LEGACY_VERSIONS)
def test_supported_legacy_version_is_echoed(version: str) -> None:
    assert negotiate_legacy(version) == version


@pytest.mark.parametrize(
    "requested", ["2026-07-28", "2099-01-01", "2024-01-01", "", None, 20251125, ["2025-11-25"]]
)
def test_anything_else_gets_the_newest_legacy_version(requested: Any) -> None:
    assert negotiate_legacy(requested) == "2025-11-25"
