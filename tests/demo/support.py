"""Paths to the bundled demo data and small helpers shared by the demo tests."""

from __future__ import annotations

import hashlib
from pathlib import Path

import mcpserve.demo

DATA_DIR = Path(mcpserve.demo.__file__).parent / "data"
BUNDLED_DB = DATA_DIR / "demo.sqlite"
RUNBOOKS = DATA_DIR / "runbooks"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
