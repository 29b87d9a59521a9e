"""What bench.fuzz and bench.soak share: the server they drive, how it is watched, its log checked.

The server is ``mcpserve serve tests/fuzz/app.py:make_server`` (async tools, one that fails, a
header-mapped argument, resources and a prompt) as a real process on a free loopback port, with
rate limits on but out of reach. Watching it means: ``/health`` answers 200, its resident memory
and open descriptors, and, at the end, every line it logged is one JSON object of the right shape
with no credential in it.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.logcheck import check_log_lines

from bench.servers import HOST, ROOT, RunningServer, ServerPool, ServerSpec, mcpserve_command

__all__ = ["LogReport", "check_log", "descriptors", "healthy", "reliability_server", "write_report"]

APP = ROOT / "tests" / "fuzz" / "app.py"
RESULTS = ROOT / "bench" / "results"
_VARYING = re.compile(r"[0-9a-f]{8,}|\d+(\.\d+)?")


def _spec(env: dict[str, str]) -> ServerSpec:
    return ServerSpec(
        "mcpserve",
        f"mcpserve serve {APP.relative_to(ROOT)}:make_server --auth none",
        mcpserve_command(f"{APP}:make_server"),
        frozenset({"2026", "2025"}),
        # Rate limits run on every call, with budgets no run can exhaust.
        env={
            "MCPSERVE_RATE_LIMIT_PER_MINUTE": "1000000000",
            "MCPSERVE_RATE_LIMIT_PER_HOUR": "1000000000",
            **env,
        },
    )


@contextmanager
def reliability_server(tag: str, env: dict[str, str], cpu: int = 0) -> Iterator[RunningServer]:
    """The server, pinned to ``cpu``, its log in a temporary folder; stopped (SIGTERM) on exit."""
    with (
        tempfile.TemporaryDirectory(prefix=f"mcpserve-{tag}-") as folder,
        ServerPool(cpu=cpu, log_dir=Path(folder), start_timeout=60) as pool,
    ):
        yield pool.start(_spec(env), tag)


def healthy(port: int, timeout: float = 5.0) -> bool:
    """``GET /health`` answers 200 (on its own connection: a broken keep-alive must not hide it)."""
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/health", timeout=timeout) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def descriptors(pid: int) -> int:
    """Open file descriptors of ``pid`` (sockets included)."""
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


@dataclass
class LogReport:
    lines: int = 0
    bad_lines: int = 0
    request_lines: int = 0
    errors_logged: int = 0
    first_bad: str | None = None
    events: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.lines > 0 and self.bad_lines == 0


def check_log(path: Path) -> LogReport:
    """Every line: one JSON object with event, level and timestamp (request lines with their
    fields), no registered secret or credential shape (``tests/support/logcheck.py``)."""
    report = LogReport()
    for raw in path.read_bytes().splitlines():
        if not raw.strip():
            continue
        report.lines += 1
        try:
            (line,) = check_log_lines(raw)
        except (AssertionError, ValueError) as exc:
            report.bad_lines += 1
            report.first_bad = report.first_bad or f"{exc}: {raw[:200]!r}"
            continue
        event = str(line["event"])
        if event == "request":
            report.request_lines += 1
        else:  # ids and numbers folded, so one kind of line is one entry
            key = _VARYING.sub("#", event)[:80]
            report.events[key] = report.events.get(key, 0) + 1
        if line["level"] in ("error", "critical"):
            report.errors_logged += 1
    return report


def write_report(kind: str, report: dict[str, Any], folder: Path | None = None) -> Path:
    """<folder>/<kind>-<UTC time>.json, by default in bench/results (git-ignored): the figures
    docs/reliability.md records."""
    folder = folder or RESULTS
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{kind}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    path.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    return path
