"""Running wrk with the bench/lua scripts and reading the JSON line their done() prints."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

from bench.servers import BENCH_DIR

LUA = {"2026": BENCH_DIR / "lua" / "mcp2026.lua", "2025": BENCH_DIR / "lua" / "mcp2025.lua"}
MARKER = "BENCH_JSON "


class WrkError(Exception):
    """wrk is missing, failed, or printed no result."""


def wrk_version() -> str | None:
    path = shutil.which("wrk")
    if path is None:
        return None
    out = subprocess.run([path, "-v"], capture_output=True, text=True, timeout=10, check=False)
    return (out.stdout or out.stderr).splitlines()[0].strip() if (out.stdout or out.stderr) else "wrk"


@dataclass
class WrkResult:
    raw: dict[str, Any]

    @property
    def rps(self) -> float:
        seconds = self.raw["duration_us"] / 1e6
        return self.raw["requests"] / seconds if seconds > 0 else 0.0

    @property
    def latency(self) -> dict[str, Any]:
        """Per-request latencies (wrk's coordinated-omission correction undone; see common.lua)."""
        raw: dict[str, Any] | None = self.raw.get("latency_us")
        return raw if raw is not None else self.raw["latency_us_wrk_corrected"]

    @property
    def p50_ms(self) -> float:
        return float(self.latency["p50"]) / 1000

    @property
    def p99_ms(self) -> float:
        return float(self.latency["p99"]) / 1000

    @property
    def busy_connections(self) -> float:
        """Little's law: requests/s x mean latency = connections with a request in flight, on average."""
        return self.rps * float(self.latency["mean"]) / 1e6

    def problems(self, connections: int) -> list[str]:
        """Why this run cannot count: errors, non-2xx answers, results of the wrong shape, or
        connections that got no answers (wrk never reports a request that does not complete)."""
        raw = self.raw
        out = [f"{name} errors: {n}" for name, n in raw["errors"].items() if n]
        if raw["requests"] == 0:
            out.append("no requests completed")
        elif self.busy_connections < 0.5 * connections:
            out.append(
                f"only {self.busy_connections:.1f} of {connections} connections busy on average"
                " (requests left unanswered?)"
            )
        if raw["non2xx"]:
            out.append(f"non-2xx: {raw['non2xx']}")
        if raw["bad"]:
            out.append(f"bad result shape: {raw['bad']} of {raw['checked']} checked")
        if out and raw.get("first_bad"):
            out.append(f"first: {raw['first_bad'][:160]}")
        return out


def run_wrk(
    url: str,
    era: str,
    connections: int,
    seconds: float,
    cpu: int,
    text: str,
    check_every: int,
    session_id: str | None = None,
    tool: str = "echo",
) -> WrkResult:
    """One wrk run (1 thread, pinned to `cpu`) of the era's Lua script against `url`."""
    env = dict(
        os.environ,
        BENCH_TEXT=text,
        BENCH_TOOL=tool,
        BENCH_CHECK_EVERY=str(check_every),
        BENCH_CONNECTIONS=str(connections),
    )
    if session_id is not None:
        env["BENCH_SESSION_ID"] = session_id
    duration = max(1, round(seconds))
    command = [
        "taskset",
        "-c",
        str(cpu),
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{duration}s",
        "--timeout",
        "5s",
        "-s",
        str(LUA[era]),
        url,
    ]
    try:
        out = subprocess.run(
            command, capture_output=True, text=True, env=env, timeout=duration + 30, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise WrkError(f"wrk did not finish within {duration + 30} s") from exc
    for line in out.stdout.splitlines():
        if line.startswith(MARKER):
            return WrkResult(json.loads(line[len(MARKER) :]))
    raise WrkError(f"wrk exit {out.returncode}, no result line: {(out.stderr or out.stdout).strip()[-300:]}")
