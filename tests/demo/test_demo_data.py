"""The bundled data: the database is reproducible from its script, and the runbooks it cites exist."""

from __future__ import annotations

import runpy
from collections.abc import Callable
from pathlib import Path

import pytest

from mcpserve.demo.sql import open_read_only

from .support import BUNDLED_DB, RUNBOOKS, sha256

ISO_UTC_GLOB = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]Z"
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "build_demo_db.py"


@pytest.fixture(scope="module")
def build() -> Callable[[Path], None]:
    """The script's ``build(output)`` function (run_path: the script is not an importable module)."""
    build_function: Callable[[Path], None] = runpy.run_path(str(SCRIPT))["build"]
    return build_function


def _dump(path: Path) -> list[str]:
    conn = open_read_only(path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def test_build_is_deterministic(build: Callable[[Path], None], tmp_path: Path) -> None:
    first, second = tmp_path / "a.sqlite", tmp_path / "b.sqlite"
    build(first)
    build(second)
    assert sha256(first) == sha256(second)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.sqlite", "b.sqlite"]


def test_bundled_database_matches_the_script(build: Callable[[Path], None], tmp_path: Path) -> None:
    fresh = tmp_path / "fresh.sqlite"
    build(fresh)
    # Compared logically: the bytes also depend on the SQLite version that wrote them.
    assert _dump(BUNDLED_DB) == _dump(fresh), "rerun scripts/build_demo_db.py and commit the result"


def test_bundled_database_uses_a_rollback_journal() -> None:
    header = BUNDLED_DB.read_bytes()[:100]
    assert header.startswith(b"SQLite format 3\x00")
    assert header[18:20] == b"\x01\x01"  # file format versions: 1 = rollback journal, 2 = WAL


def test_dataset_shape() -> None:
    conn = open_read_only(BUNDLED_DB)
    try:
        count = {
            t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("services", "deployments", "incidents")
        }
        statuses = {row[0] for row in conn.execute("SELECT DISTINCT status FROM deployments")}
        orphans = conn.execute(
            "SELECT count(*) FROM deployments WHERE service NOT IN (SELECT name FROM services)"
        ).fetchone()[0]
        timestamps = conn.execute(
            "SELECT count(*) FROM deployments WHERE started_at NOT GLOB ?", (ISO_UTC_GLOB,)
        ).fetchone()[0]
    finally:
        conn.close()
    assert count["services"] == 10
    assert 70 <= count["deployments"] <= 90
    assert 20 <= count["incidents"] <= 30
    assert statuses == {"succeeded", "failed", "rolled_back", "in_progress"}
    assert orphans == 0
    assert timestamps == 0


def test_incident_runbooks_exist() -> None:
    conn = open_read_only(BUNDLED_DB)
    try:
        runbooks = {
            row[0] for row in conn.execute("SELECT DISTINCT runbook FROM incidents WHERE runbook IS NOT NULL")
        }
    finally:
        conn.close()
    assert runbooks
    assert runbooks <= {p.name for p in RUNBOOKS.glob("*.md")}
