"""Fixtures for the demo operations library."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .support import BUNDLED_DB


@pytest.fixture
def demo_db(tmp_path: Path) -> Path:
    """A writable copy of the bundled database alone in its own folder, so side files would show."""
    folder = tmp_path / "db"
    folder.mkdir()
    return Path(shutil.copy(BUNDLED_DB, folder / "demo.sqlite"))
