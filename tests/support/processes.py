"""How tests start ``mcpserve`` as a child process.

Children run under ``coverage run --parallel-mode`` when the test run itself is measured, so the
stdio transport and CLI code they execute still count towards line coverage.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import coverage

ROOT = Path(__file__).resolve().parents[2]

# Environment variables that would otherwise leak the developer's configuration into a child.
_SCRUBBED_PREFIXES = ("MCPSERVE_", "COVERAGE_", "OTEL_")
_SCRUBBED_NAMES = frozenset(
    {"PORT", "LOG_LEVEL", "DATABASE_URL", "RATE_LIMIT_PER_MINUTE", "RATE_LIMIT_PER_HOUR"}
)


def child_env(**extra: str) -> dict[str, str]:
    """The current environment without mcpserve settings, plus ``extra`` (and coverage wiring)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(_SCRUBBED_PREFIXES) and key not in _SCRUBBED_NAMES
    }
    env.update(coverage_env())
    env.update(extra)
    return env


def coverage_env() -> dict[str, str]:
    """Where a measured child writes its data, when this test run is itself measured."""
    current = coverage.Coverage.current()
    if current is None:
        return {}
    return {"COVERAGE_FILE": str(Path(current.config.data_file).resolve())}


def mcpserve_argv(*args: str) -> list[str]:
    """argv that runs ``mcpserve ARGS`` with this interpreter (measured if the run is measured)."""
    if coverage.Coverage.current() is None:
        return [sys.executable, "-m", "mcpserve", *args]
    rcfile = str(ROOT / "pyproject.toml")
    return [
        sys.executable,
        "-m",
        "coverage",
        "run",
        "--parallel-mode",
        f"--rcfile={rcfile}",
        "-m",
        "mcpserve",
        *args,
    ]


def stop_process(
    process: subprocess.Popen[bytes], signum: int = signal.SIGTERM, timeout: float = 10.0
) -> None:
    """Ask a child to stop with ``signum``; SIGKILL it if it has not exited within ``timeout``."""
    process.send_signal(signum)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
