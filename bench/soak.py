"""`python -m bench.soak --minutes N`: mixed load for N minutes, memory and descriptors per minute.

Workers on keep-alive connections share a target rate (``--rate``, requests a second) over a
mix of what clients do: 2026-07-28 tool calls (echo, a structured result, a tool that fails),
lists, resource reads and prompts; 2025-era sessions that initialize, call a few tools and then
end with DELETE or are abandoned to expire (the server runs with a 60 s idle timeout, so the
soak also exercises expiry). Every answer must be the expected one; ``/health`` must answer 200
at each sample. Each sample (``--sample-seconds``, default 60) records the server's RSS, its
open descriptors, requests, errors and latency percentiles. Pass: no error, health throughout,
and, for runs of 2 minutes or more, RSS at the end within ``--max-rss-growth`` percent (default
5) of RSS after the first minute (the warm-up).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from bench.httpclient import (
    BASE_HEADERS,
    LEGACY_VERSION,
    MODERN_META,
    MODERN_VERSION,
    Connection,
    HttpError,
    open_session,
)
from bench.reliability import check_log, descriptors, healthy, reliability_server, write_report
from bench.servers import HOST, rss_kib

__all__ = ["main"]

WORKERS = 8
IDLE_TIMEOUT = 60  # seconds: abandoned sessions expire during any soak of a few minutes

# (what, weight): one step a worker takes; a session counts its own requests.
MIX = [
    ("echo", 40),
    ("weather", 10),
    ("fails", 5),
    ("tools/list", 10),
    ("resources/read", 5),
    ("prompts/get", 5),
    ("session", 25),
]


@dataclass
class Interval:
    requests: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)


@dataclass
class Load:
    interval: Interval = field(default_factory=Interval)
    total_requests: int = 0
    total_errors: int = 0
    first_errors: list[str] = field(default_factory=list)
    sessions_ended: int = 0
    sessions_abandoned: int = 0

    def error(self, detail: str) -> None:
        self.interval.errors += 1
        self.total_errors += 1
        if len(self.first_errors) < 20:
            self.first_errors.append(detail[:300])


def _modern(method: str, params: dict[str, Any], name: str | None = None) -> tuple[dict[str, str], bytes]:
    headers = {**BASE_HEADERS, "MCP-Protocol-Version": MODERN_VERSION, "Mcp-Method": method}
    if name is not None:
        headers["Mcp-Name"] = name
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": {**params, "_meta": MODERN_META}}
    return headers, orjson.dumps(body)


_STEPS: dict[str, tuple[dict[str, str], bytes]] = {
    "echo": _modern("tools/call", {"name": "echo", "arguments": {"text": "soak"}}, "echo"),
    "weather": _modern("tools/call", {"name": "weather", "arguments": {"city": "Oslo"}}, "weather"),
    "fails": _modern("tools/call", {"name": "fails", "arguments": {}}, "fails"),
    "tools/list": _modern("tools/list", {}),
    "resources/read": _modern("resources/read", {"uri": "test://items/7"}, "test://items/7"),
    "prompts/get": _modern("prompts/get", {"name": "review", "arguments": {"code": "x"}}, "review"),
}


def _expected(step: str, message: dict[str, Any]) -> bool:
    result = message.get("result")
    if not isinstance(result, dict):
        return False
    if step == "fails":
        return result.get("isError") is True
    if step == "tools/list":
        return len(result.get("tools", [])) == 4
    if step in ("echo", "weather"):
        return result.get("isError") is not True
    return True


class Worker:
    def __init__(self, port: int, load: Load, rng: random.Random) -> None:
        self.conn = Connection(HOST, port)
        self.load = load
        self.rng = rng
        self.sent = 0  # requests this worker sent, so the pace counts requests, not steps

    async def request(self, headers: dict[str, str], body: bytes, method: str = "POST") -> Any:
        started = time.perf_counter()
        response = await self.conn.request(method, "/mcp", headers, body)
        interval = self.load.interval
        interval.latencies.append(time.perf_counter() - started)
        interval.requests += 1
        interval.statuses[response.status] += 1
        self.load.total_requests += 1
        self.sent += 1
        if response.status >= 300:
            raise HttpError(f"HTTP {response.status}: {response.body[:200]!r}")
        return response

    async def step(self, what: str) -> None:
        if what != "session":
            headers, body = _STEPS[what]
            message = (await self.request(headers, body)).json()
            if not _expected(what, message):
                raise HttpError(f"{what}: unexpected answer {str(message)[:200]}")
            return
        await self.session()

    async def session(self) -> None:
        started = self.load.interval
        session = await open_session(self.conn)
        started.requests += 2  # initialize and notifications/initialized
        self.load.total_requests += 2
        self.sent += 2
        headers = {**BASE_HEADERS, "Mcp-Session-Id": session, "MCP-Protocol-Version": LEGACY_VERSION}
        for n in range(self.rng.randint(1, 4)):
            call = {
                "jsonrpc": "2.0",
                "id": n + 1,
                "method": "tools/call",
                "params": {"name": "echo", "arguments": {"text": f"in session {n}"}},
            }
            message = (await self.request(headers, orjson.dumps(call))).json()
            if message.get("result", {}).get("content", [{}])[0].get("text") != f"in session {n}":
                raise HttpError(f"session call: unexpected answer {str(message)[:200]}")
        if self.rng.random() < 0.8:
            await self.request(headers, b"", "DELETE")
            self.load.sessions_ended += 1
        else:
            self.load.sessions_abandoned += 1  # left to expire after the idle timeout


async def _drive(port: int, seconds: float, rate: float, load: Load, seed_value: int) -> None:
    deadline = time.monotonic() + seconds
    steps = [what for what, weight in MIX for _ in range(weight)]
    pace = WORKERS / rate  # seconds between two requests of one worker

    async def work(n: int) -> None:
        worker = Worker(port, load, random.Random(seed_value + n))
        next_at = time.monotonic()
        try:
            while time.monotonic() < deadline:
                before = worker.sent
                try:
                    await worker.step(worker.rng.choice(steps))
                except Exception as exc:  # any surprise is an error of the run, counted, never a crash
                    load.error(f"{type(exc).__name__}: {exc}")
                next_at += pace * max(1, worker.sent - before)
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        finally:
            await worker.conn.close()

    await asyncio.gather(*(work(n) for n in range(WORKERS)))


def _sample(load: Load, pid: int, port: int, elapsed: float) -> dict[str, Any]:
    interval, load.interval = load.interval, Interval()
    latencies = sorted(interval.latencies) or [0.0]
    return {
        "t_s": round(elapsed),
        "rss_kib": rss_kib(pid),
        "fds": descriptors(pid),
        "requests": interval.requests,
        "errors": interval.errors,
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 2),
        "statuses": dict(interval.statuses),
        "healthy": healthy(port),
    }


async def _soak(port: int, pid: int, opts: argparse.Namespace, load: Load) -> list[dict[str, Any]]:
    seconds = opts.minutes * 60
    samples = [_sample(load, pid, port, 0.0)]
    started = time.monotonic()
    driving = asyncio.create_task(_drive(port, seconds, opts.rate, load, opts.seed))
    for n in itertools.count(1):
        if n * opts.sample_seconds >= seconds:  # the last sample: once every worker has stopped
            await driving
            samples.append(_sample(load, pid, port, time.monotonic() - started))
            return samples
        at = started + n * opts.sample_seconds
        await asyncio.wait({driving}, timeout=max(0.0, at - time.monotonic()))
        samples.append(_sample(load, pid, port, time.monotonic() - started))
    raise AssertionError("unreachable")  # itertools.count never ends


def _growth(samples: list[dict[str, Any]]) -> float | None:
    """RSS growth (%) from the first minute's end to the last sample."""
    after_warmup = next((s for s in samples if s["t_s"] >= min(60.0, samples[-1]["t_s"])), None)
    if after_warmup is None or after_warmup is samples[-1]:
        return None
    return round((float(samples[-1]["rss_kib"]) / float(after_warmup["rss_kib"]) - 1) * 100, 2)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, required=True, help="how long to run")
    parser.add_argument("--rate", type=float, default=380.0, help="target requests a second (default 380)")
    parser.add_argument("--sample-seconds", type=float, default=60.0, help="seconds between samples")
    parser.add_argument("--max-rss-growth", type=float, default=5.0, help="percent, after the first minute")
    parser.add_argument("--seed", type=int, default=20260728)
    parser.add_argument("--cpu", type=int, default=0, help="CPU the server is pinned to")
    parser.add_argument("--results", type=Path, help="folder for the JSON report (default bench/results)")
    opts = parser.parse_args(argv)
    load = Load()
    env = {"MCPSERVE_SESSION_IDLE_TIMEOUT": str(IDLE_TIMEOUT)}
    with reliability_server("soak", env, opts.cpu) as server:
        samples = asyncio.run(_soak(server.port, server.process.pid, opts, load))
        alive = server.alive()
        server.stop()
        log = check_log(server.log_path)
    growth = _growth(samples)
    problems = []
    if load.total_errors:
        problems.append(f"{load.total_errors} errors")
    if not all(s["healthy"] for s in samples[1:]) or not alive:
        problems.append("health failed or the server died")
    if not log.ok:
        problems.append(f"log shape: {log.first_bad}")
    if opts.minutes >= 2 and (growth is None or growth >= opts.max_rss_growth):
        problems.append(f"RSS grew {growth}% after the first minute (limit {opts.max_rss_growth}%)")
    report = {
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "minutes": opts.minutes,
        "target_rate": opts.rate,
        "requests": load.total_requests,
        "errors": load.total_errors,
        "first_errors": load.first_errors,
        "sessions": {"ended": load.sessions_ended, "abandoned": load.sessions_abandoned},
        "rss_growth_after_first_minute_pct": growth,
        "samples": samples,
        "log": {"lines": log.lines, "bad_lines": log.bad_lines, "errors_logged": log.errors_logged},
        "problems": problems,
    }
    path = write_report("soak", report, opts.results)
    print(json.dumps(report, indent=2, sort_keys=True))
    print(" t(s)  RSS(KiB)  fds  requests  errors  p50(ms)  p99(ms)")
    for s in samples:
        print(
            f"{s['t_s']:5d} {s['rss_kib']:9d} {s['fds']:4d} {s['requests']:9d} {s['errors']:7d}"
            f" {s['p50_ms']:8.2f} {s['p99_ms']:8.2f}"
        )
    verdict = "FAIL: " + "; ".join(problems) if problems else "PASS"
    print(f"bench.soak: {verdict}: {load.total_requests} requests in {opts.minutes:g} min ({path})")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
