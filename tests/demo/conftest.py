"""Fixtures for the demo operations library."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from .pg_demo import DemoSchema, loaded_demo_schema
from .support import BUNDLED_DB


@pytest.fixture
def demo_db(tmp_path: Path) -> Path:
    """A writable copy of the bundled database alone in its own folder, so side files would show."""
    folder = tmp_path / "db"
    folder.mkdir()
    return Path(shutil.copy(BUNDLED_DB, folder / "demo.sqlite"))


@pytest.fixture(scope="module")
async def demo_schema() -> AsyncIterator[DemoSchema]:
    """The demo data in a fresh schema on the shared PostgreSQL, with write traps; dropped after."""
    async with loaded_demo_schema() as schema:
        yield schema
