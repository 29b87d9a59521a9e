"""Ten-second runs of the reliability suite (`python -m bench.fuzz`, `python -m bench.soak`), so
the tools the long runs of docs/reliability.md use keep working."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.processes import ROOT, child_env

pytestmark = pytest.mark.slow


def _run(module: str, tmp_path: Path, *args: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-m", module, "--results", str(tmp_path), *args],
        cwd=ROOT,
        env=child_env(),
        capture_output=True,
        timeout=180,
        check=False,
    )
    output = done.stdout.decode()
    assert done.returncode == 0, output[-3000:] + done.stderr.decode()[-2000:]
    assert output.splitlines()[-1].startswith(f"{module}: PASS: ")
    (report,) = tmp_path.glob("*.json")
    loaded: dict[str, object] = json.loads(report.read_text())
    return loaded


def test_bench_fuzz_smoke(tmp_path: Path) -> None:
    report = _run("bench.fuzz", tmp_path, "--requests", "3000")
    assert report["requests"] == 3000 and report["failures"] == {}
    statuses = report["statuses"]
    assert isinstance(statuses, dict)
    assert {"200", "400"} <= set(statuses["modern"]) and "200" in statuses["legacy"]


def test_bench_soak_smoke(tmp_path: Path) -> None:
    report = _run("bench.soak", tmp_path, "--minutes", "0.17", "--sample-seconds", "2", "--rate", "200")
    assert report["errors"] == 0
    samples = report["samples"]
    assert isinstance(samples, list) and len(samples) >= 5
    assert all(sample["rss_kib"] > 0 and sample["fds"] > 0 for sample in samples)
