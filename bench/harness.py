"""Side-by-side benchmark: mcpserve vs the official Python SDK vs a bare uvicorn ceiling.

Measures, on loopback with the server pinned to one CPU and the load generator to another:
tools/call throughput and p50/p99 latency with wrk (2026-07-28 stateless JSON and 2025-11-25 on
a session) at several connection counts; the 2025-era session creation rate; and the memory per
idle 2025-era session. Repetitions are interleaved across servers; medians are reported. A server
that does not start, or answers wrongly, is reported as unavailable instead of failing the run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import httpclient
from bench.otlp_sink import otlp_sink
from bench.paired import paired_ratio
from bench.redis_server import BenchRedis, start_redis
from bench.servers import (
    BENCH_DIR,
    HOST,
    PATH,
    ROOT,
    SERVERS,
    RunningServer,
    ServerPool,
    ServerSpec,
    ServerUnavailable,
    state_prefix,
)
from bench.wrk import WrkError, run_wrk, wrk_version

ERA_TITLES = {
    "2026": "tools/call at 2026-07-28 (stateless, JSON response)",
    "2025": "tools/call at 2025-11-25 (one initialized session, JSON response)",
}
SERVER_ORDER = [
    "mcpserve",
    "baseline",
    "mcpserve-traced",
    "mcpserve-traced-unexported",
    "mcpserve-twin",
    "mcpserve-redis",
    "sdk",
    "bare",
    "bare-held",
    "gateway",
    "supergateway",
    "mcp-proxy",
]
# On request (see bench/README.md): bare-held, baseline, mcpserve-traced(-unexported),
# mcpserve-twin, mcpserve-redis and the gateways.
DEFAULT_SERVERS = ["mcpserve", "sdk", "bare"]
BASELINE, CEILING = "sdk", "bare"
UNTRACED, TRACED = "mcpserve", "mcpserve-traced"
TWIN = "mcpserve-twin"  # mcpserve again: its ratio to mcpserve is the noise floor of traced/untraced
UNEXPORTED = "mcpserve-traced-unexported"  # traced, nothing exported: recording's share of the cost
PAIRED = (TRACED, UNEXPORTED, TWIN)  # each taken rep by rep over mcpserve when both run
# The Redis-backed mcpserve is compared with the in-memory one (the scale-out's cost on one replica).
MEMORY, REDIS = "mcpserve", "mcpserve-redis"


@dataclass(frozen=True)
class Options:
    servers: list[str]
    eras: list[str]
    connections: list[int]
    duration: float
    warmup: float
    reps: int
    fresh_every: int
    sessions: int
    session_concurrency: int
    session_timeout: float
    check_every: int
    text: str
    server_cpu: int
    client_cpu: int
    redis_cpu: int | None
    start_timeout: float
    tool: str
    skip_throughput: bool
    skip_sessions: bool
    results_dir: Path
    output: Path | None
    tracing: bool
    trace_ratio: float
    baseline: Path | None


def _csv(kind: type[Any], choices: Iterable[str] | None = None) -> Any:
    def parse(value: str) -> list[Any]:
        items = [kind(v.strip()) for v in value.split(",") if v.strip()]
        if not items:
            raise argparse.ArgumentTypeError("empty list")
        if choices is not None:
            bad = [str(i) for i in items if str(i) not in set(choices)]
            if bad:
                raise argparse.ArgumentTypeError(
                    f"unknown: {', '.join(bad)} (choose from {', '.join(choices)})"
                )
        return items

    return parse


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add(
        "--servers",
        type=_csv(str, SERVER_ORDER),
        default=DEFAULT_SERVERS,
        help="default: mcpserve,sdk,bare; bare-held: the ceiling on mcpserve's HTTP protocol;"
        " mcpserve-redis: state in a private Redis; gateway,supergateway,mcp-proxy: the same stdio"
        " echo behind each gateway (python -m bench.gateway)",
    )
    add("--eras", type=_csv(str, ["2026", "2025"]), default=["2026", "2025"], help="default: 2026,2025")
    add("--connections", type=_csv(int), default=[1, 16, 64], help="wrk connections (default: 1,16,64)")
    add("--duration", type=float, default=5.0, help="seconds per wrk point (default: 5)")
    add("--warmup", type=float, default=1.0, help="seconds of wrk warm-up per server, era and rep (0: none)")
    add("--reps", type=int, default=3, help="interleaved repetitions (default: 3)")
    add(
        "--fresh-every",
        type=int,
        default=0,
        help="start each server's process again every N reps (0: one process per server for the run);"
        " two processes of the same code differ by up to 8%% in req/s, so a ratio of two servers"
        " is only as good as the number of processes behind it",
    )
    add("--sessions", type=int, default=1000, help="2025-era sessions to create per rep (default: 1000)")
    add("--session-concurrency", type=int, default=16, help="concurrent session-creating connections (16)")
    add("--session-timeout", type=float, default=120.0, help="bound on one session-creation run (s)")
    add("--check-every", type=int, default=1, help="check the result shape of every Nth response (0: none)")
    add("--text", default="hello from wrk", help="text sent to echo (plain ASCII, no quotes)")
    add("--server-cpu", type=int, default=0)
    add("--client-cpu", type=int, default=1)
    add("--redis-cpu", type=int, default=None, help="CPU of the private Redis (default: the client's)")
    add("--start-timeout", type=float, default=20.0, help="seconds a server may take to listen")
    add(
        "--tool",
        choices=["sync", "async"],
        default="sync",
        help="echo as a plain def (run in each server's worker threads) or an async def (default: sync)",
    )
    add(
        "--tracing",
        action="store_true",
        help="also run mcpserve with tracing on (mcpserve-traced), in the same run as tracing off",
    )
    add("--trace-ratio", type=float, default=0.1, help="sampled share of requests with --tracing (0.1)")
    add(
        "--baseline",
        type=Path,
        default=None,
        help="a checkout of mcpserve with its own .venv (make install), run as 'baseline' beside mcpserve",
    )
    add("--skip-throughput", action="store_true")
    add("--skip-sessions", action="store_true")
    add("--results-dir", type=Path, default=BENCH_DIR / "results")
    add("--output", type=Path, default=None, help="JSON path (default: <results-dir>/<timestamp>.json)")
    ns = parser.parse_args(argv)
    if ns.fresh_every < 0:
        parser.error("--fresh-every must be >= 0")
    if ns.reps < 1 or ns.duration < 1 or ns.sessions < 1 or ns.session_concurrency < 1:
        parser.error("--reps, --duration, --sessions and --session-concurrency must be >= 1")
    if any(c < 1 for c in ns.connections):
        parser.error("--connections must be >= 1")
    if any(c in ns.text for c in '"\\') or not ns.text.isascii():
        parser.error("--text must be plain ASCII without quotes or backslashes")
    if not 0 <= ns.trace_ratio <= 1:
        parser.error("--trace-ratio must be from 0 to 1")
    if ns.baseline is not None:
        if not (ns.baseline / ".venv" / "bin" / "mcpserve").is_file():
            parser.error(f"--baseline: no {ns.baseline}/.venv/bin/mcpserve (run make install there)")
        os.environ["BENCH_BASELINE_DIR"] = str(ns.baseline.resolve())  # read by servers._baseline
        if "baseline" not in ns.servers:
            ns.servers = [*ns.servers, "baseline"]
    elif "baseline" in ns.servers:
        parser.error("--servers baseline needs --baseline DIR")
    if ns.tracing:  # off and on side by side: both mcpserve columns, whatever --servers says
        ns.servers = [UNTRACED, TRACED, *(n for n in ns.servers if n not in (UNTRACED, TRACED))]
    return Options(**vars(ns))


# --- helpers -----------------------------------------------------------------------------------


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _rotated(items: list[str], n: int) -> list[str]:
    return items[n % len(items) :] + items[: n % len(items)] if items else items


def _run_async(coro: Any, timeout: float) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


def _specs(opts: Options) -> list[ServerSpec]:
    return [spec for name in opts.servers for spec in SERVERS[name] if spec.eras & set(opts.eras)]


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for dist in ["mcpserve", "mcp", "mcp-types", "uvicorn", "uvloop", "httptools", "starlette", "orjson"]:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    out["python"] = platform.python_version()
    out["wrk"] = wrk_version()
    return out


def _git() -> dict[str, Any]:
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    status = git("status", "--porcelain")
    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(status) if status is not None else None}


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


# --- throughput ----------------------------------------------------------------------------------


def _probe(server: RunningServer, era: str, text: str) -> str | None:
    """Open a session if the era needs one and make one echo call; returns the session id (2025)."""

    async def go() -> str | None:
        conn = httpclient.Connection(HOST, server.port)
        try:
            session = await httpclient.open_session(conn, PATH) if era == "2025" else None
            await httpclient.call_echo(conn, era, text, session, PATH, server.spec.tool)
            return session
        finally:
            await conn.close()

    result: str | None = _run_async(go(), 30)
    return result


def _start_targets(
    opts: Options, pool: ServerPool, availability: dict[str, dict[str, Any]]
) -> dict[tuple[str, str], RunningServer]:
    """Each server started (one process for all its eras) and probed: the ones that answer, by era."""
    targets: dict[tuple[str, str], RunningServer] = {}
    for spec in _specs(opts):
        eras = [e for e in opts.eras if e in spec.eras]
        try:
            server = pool.start(spec, "throughput-" + "-".join(eras))
        except ServerUnavailable as exc:
            for era in eras:
                availability[spec.name][era] = {"available": False, "config": spec.config, "reason": str(exc)}
            _say(f"  {spec.name} ({'/'.join(eras)}): unavailable: {exc}")
            continue
        for era in eras:
            try:
                _probe(server, era, opts.text)
            except (httpclient.HttpError, TimeoutError) as exc:
                reason = f"echo probe failed: {exc}"
                availability[spec.name][era] = {"available": False, "config": spec.config, "reason": reason}
                _say(f"  {spec.name} ({era}): unavailable: {reason}")
                continue
            availability[spec.name][era] = {"available": True, "config": spec.config, "reason": None}
            targets[(spec.name, era)] = server
    return targets


def throughput_phase(
    opts: Options, pool: ServerPool, availability: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    targets = _start_targets(opts, pool, availability)
    runs: list[dict[str, Any]] = []
    points = opts.reps * sum(len([n for n in opts.servers if (n, e) in targets]) for e in opts.eras)
    _say(
        f"throughput: {points * len(opts.connections)} points x {opts.duration:.0f} s"
        f" (+ {opts.warmup:.0f} s warm-up per server/era/rep)"
    )
    for rep in range(opts.reps):
        if opts.fresh_every and rep and rep % opts.fresh_every == 0:
            pool.stop_all()
            _say(f"  rep {rep + 1}: every server started again")
            targets = _start_targets(opts, pool, availability)
        for era in opts.eras:
            order = [n for n in _rotated(opts.servers, rep) if (n, era) in targets]
            sessions: dict[str, str | None] = {}
            for name in order:
                server = targets[(name, era)]
                try:
                    sessions[name] = _probe(server, era, opts.text)  # a fresh session per rep (2025)
                    if opts.warmup > 0:
                        run_wrk(
                            server.url,
                            era,
                            16,
                            opts.warmup,
                            opts.client_cpu,
                            opts.text,
                            0,
                            sessions[name],
                            server.spec.tool,
                        )
                except (httpclient.HttpError, TimeoutError, WrkError) as exc:
                    _say(f"  rep {rep + 1} {era} {name}: setup failed: {exc}")
                    sessions.pop(name, None)
            for conns in opts.connections:
                for name in order:
                    if name not in sessions:
                        runs.append(_failed_run(rep, era, name, conns, "session/warm-up failed"))
                        continue
                    server = targets[(name, era)]
                    if not server.alive():
                        runs.append(_failed_run(rep, era, name, conns, "server died"))
                        continue
                    try:
                        cpu_before = server.cpu_seconds()
                        res = run_wrk(
                            server.url,
                            era,
                            conns,
                            opts.duration,
                            opts.client_cpu,
                            opts.text,
                            opts.check_every,
                            sessions[name],
                            server.spec.tool,
                        )
                    except WrkError as exc:
                        runs.append(_failed_run(rep, era, name, conns, str(exc)))
                        continue
                    cpu_us = _cpu_us_per_request(server.cpu_seconds() - cpu_before, res.raw["requests"])
                    problems = res.problems(conns)
                    runs.append(
                        {
                            "rep": rep,
                            "era": era,
                            "server": name,
                            "connections": conns,
                            "valid": not problems,
                            "problems": problems,
                            "rps": res.rps,
                            "p50_ms": res.p50_ms,
                            "p99_ms": res.p99_ms,
                            "busy_connections": res.busy_connections,
                            "cpu_us": cpu_us,
                            "wrk": res.raw,
                        }
                    )
                    flag = "" if not problems else "  INVALID: " + "; ".join(problems)
                    _say(
                        f"  rep {rep + 1}/{opts.reps} {era} c={conns:<3} {name:<9}"
                        f" {res.rps:>9.0f} req/s  p50 {res.p50_ms:6.2f} ms  p99 {res.p99_ms:7.2f} ms"
                        f"  {_fmt(cpu_us, '.1f')} us CPU/req{flag}"
                    )
    pool.stop_all()
    phase: dict[str, Any] = {"runs": runs, "medians": _throughput_medians(opts, runs)}
    if UNTRACED in opts.servers and set(PAIRED) & set(opts.servers):
        phase["paired"] = _paired_with_untraced(opts, runs)
    return phase


def _paired_with_untraced(opts: Options, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Traced (unexported, twin) over untraced, rep by rep (each rep runs them one after the other):
    req/s, and the untraced server's CPU per request over theirs (the req/s ratio of a server
    held to its CPU)."""
    out = []
    for era in opts.eras:
        for conns in opts.connections:
            for server in PAIRED:
                rps = paired_ratio(runs, era, conns, server, UNTRACED, "rps")
                cpu = paired_ratio(runs, era, conns, UNTRACED, server, "cpu_us")
                if rps.values:
                    point = {"era": era, "connections": conns, "server": server}
                    out.append({**point, "rps": vars(rps), "cpu": vars(cpu)})
    return out


def _cpu_us_per_request(cpu_seconds: float, requests: int) -> float | None:
    """Server CPU (user + system, every thread) per answered request: steadier than req/s on a
    shared machine, since time the server is not scheduled costs throughput but not CPU."""
    return cpu_seconds * 1e6 / requests if requests > 0 else None


def _failed_run(rep: int, era: str, name: str, conns: int, why: str) -> dict[str, Any]:
    _say(f"  rep {rep + 1} {era} c={conns} {name}: {why}")
    return {"rep": rep, "era": era, "server": name, "connections": conns, "valid": False, "problems": [why]}


def _throughput_medians(opts: Options, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for era in opts.eras:
        for conns in opts.connections:
            rows: dict[str, dict[str, Any]] = {}
            for name in opts.servers:
                mine = [r for r in runs if (r["era"], r["connections"], r["server"]) == (era, conns, name)]
                valid = [r for r in mine if r["valid"]]
                rows[name] = {
                    "era": era,
                    "connections": conns,
                    "server": name,
                    "runs": len(mine),
                    "valid_runs": len(valid),
                    "rps": _median([r["rps"] for r in valid]),
                    "p50_ms": _median([r["p50_ms"] for r in valid]),
                    "p99_ms": _median([r["p99_ms"] for r in valid]),
                    "cpu_us": _median([r["cpu_us"] for r in valid if r["cpu_us"] is not None]),
                }
            for row in rows.values():
                row["rps_vs_sdk"] = _ratio(row["rps"], rows.get(BASELINE, {}).get("rps"))
                row["rps_vs_ceiling"] = _ratio(row["rps"], rows.get(CEILING, {}).get("rps"))
                # As a share of the ceiling, like rps: the ceiling's CPU per request over this server's.
                row["cpu_vs_ceiling"] = _ratio(rows.get(CEILING, {}).get("cpu_us"), row["cpu_us"])
                if row["server"] == TRACED:  # what tracing costs: on over off, in the same run
                    row["rps_vs_untraced"] = _ratio(row["rps"], rows.get(UNTRACED, {}).get("rps"))
                elif row["server"] == "baseline":  # this checkout's mcpserve over the baseline's
                    row["current_vs_baseline"] = _ratio(rows.get("mcpserve", {}).get("rps"), row["rps"])
                elif row["server"] == REDIS:
                    row["rps_vs_memory"] = _ratio(row["rps"], rows.get(MEMORY, {}).get("rps"))
                out.append(row)
    return out


# --- sessions --------------------------------------------------------------------------------------


def session_phase(
    opts: Options, pool: ServerPool, availability: dict[str, dict[str, Any]], redis: BenchRedis | None = None
) -> dict[str, Any]:
    specs = [spec for name in opts.servers for spec in SERVERS[name] if "2025" in spec.eras]
    runs: list[dict[str, Any]] = []
    _say(f"sessions: {opts.reps} x {len(specs)} fresh servers x {opts.sessions} sessions")
    for rep in range(opts.reps):
        order = _rotated([s.name for s in specs], rep)
        for spec in sorted(specs, key=lambda s: order.index(s.name)):
            runs.append(_session_run(opts, pool, spec, rep, availability, redis if spec.redis else None))
    medians: list[dict[str, Any]] = []
    rows: dict[str, dict[str, Any]] = {}
    for spec in specs:
        valid = [r for r in runs if r["server"] == spec.name and r["valid"]]
        rows[spec.name] = {
            "server": spec.name,
            "config": spec.config,
            "runs": len([r for r in runs if r["server"] == spec.name]),
            "valid_runs": len(valid),
            "sessions_per_s": _median([r["sessions_per_s"] for r in valid]),
            "kib_per_session": _median([r["kib_per_session"] for r in valid]),
        }
        if spec.redis:
            for key in ("redis_bytes_per_session", "redis_session_hash", "redis_index_per_session"):
                rows[spec.name][key] = _median([r[key] for r in valid if r.get(key) is not None])
    for row in rows.values():
        row["rate_vs_sdk"] = _ratio(row["sessions_per_s"], rows.get(BASELINE, {}).get("sessions_per_s"))
        row["rate_vs_ceiling"] = _ratio(row["sessions_per_s"], rows.get(CEILING, {}).get("sessions_per_s"))
        row["memory_vs_sdk"] = _ratio(row["kib_per_session"], rows.get(BASELINE, {}).get("kib_per_session"))
        medians.append(row)
    return {
        "sessions": opts.sessions,
        "concurrency": opts.session_concurrency,
        "runs": runs,
        "medians": medians,
    }


def _session_run(
    opts: Options,
    pool: ServerPool,
    spec: ServerSpec,
    rep: int,
    availability: dict[str, dict[str, Any]],
    redis: BenchRedis | None,
) -> dict[str, Any]:
    base: dict[str, Any] = {"rep": rep, "server": spec.name, "valid": False}
    try:
        server = pool.start(spec, f"sessions-{rep}")
    except ServerUnavailable as exc:
        availability[spec.name].setdefault(
            "2025", {"available": False, "config": spec.config, "reason": str(exc)}
        )
        _say(f"  rep {rep + 1} {spec.name}: unavailable: {exc}")
        return base | {"problems": [str(exc)]}
    try:
        # Warm-up at the run's concurrency: connections (to clients, to Redis) and their buffers are
        # a fixed cost, not a per-session one.
        warm_up = httpclient.create_sessions(
            HOST, server.port, max(20, 2 * opts.session_concurrency), opts.session_concurrency, PATH
        )
        warm = _run_async(warm_up, opts.session_timeout)
        if warm.failures:
            raise httpclient.HttpError(f"warm-up: {warm.failures} failed: {warm.first_error}")
        time.sleep(0.3)
        before = server.rss_kib()
        redis_before = redis.used_memory() if redis is not None else 0
        run = _run_async(
            httpclient.create_sessions(HOST, server.port, opts.sessions, opts.session_concurrency, PATH),
            opts.session_timeout,
        )
        # With Redis state, past the replica's read cache period (MCPSERVE_SESSION_CACHE_TTL, 1 s),
        # so what is left is what an idle session costs the replica.
        time.sleep(1.5 if spec.redis else 0.5)
        after = server.rss_kib()
        in_redis = _redis_per_session(
            redis, redis_before, run.sessions, state_prefix(spec, f"sessions-{rep}")
        )
    except (httpclient.HttpError, TimeoutError) as exc:
        _say(f"  rep {rep + 1} {spec.name}: failed: {exc}")
        return base | {"problems": [str(exc)]}
    finally:
        pool.stop(server)
    problems = (
        [f"{run.failures} of {opts.sessions} sessions failed: {run.first_error}"] if run.failures else []
    )
    per_session = (after - before) / run.sessions if run.sessions else 0.0
    redis_note = (
        f"  Redis {in_redis['redis_bytes_per_session']:.0f} B/session"
        if "redis_bytes_per_session" in in_redis
        else ""
    )
    _say(
        f"  rep {rep + 1}/{opts.reps} {spec.name:<14} {run.rate:>8.0f} sessions/s"
        f"  RSS {before / 1024:.1f} -> {after / 1024:.1f} MiB  {per_session:.2f} KiB/session"
        + redis_note
        + ("  INVALID: " + "; ".join(problems) if problems else "")
    )
    return base | {
        "valid": not problems,
        "problems": problems,
        "sessions_per_s": run.rate,
        "seconds": run.seconds,
        "created": run.sessions,
        "failures": run.failures,
        "rss_before_kib": before,
        "rss_after_kib": after,
        "kib_per_session": per_session,
        **in_redis,
    }


def _redis_per_session(redis: BenchRedis | None, before: int, sessions: int, prefix: str) -> dict[str, float]:
    """Redis memory per session: the growth of ``used_memory`` over the run, and ``MEMORY USAGE``
    of one session's hash plus its share of the shared index."""
    if redis is None or not sessions:
        return {}
    found = {"redis_bytes_per_session": (redis.used_memory() - before) / sessions}
    keys = redis.session_key_bytes(prefix)
    if "session_hash" in keys:
        found["redis_session_hash"] = keys["session_hash"]
    if "index_per_session" in keys:
        found["redis_index_per_session"] = keys["index_per_session"]
    return found


# --- report ------------------------------------------------------------------------------------------


def _fmt(value: float | None, spec: str, suffix: str = "") -> str:
    return "—" if value is None else f"{value:{spec}}{suffix}"


def _tracing_lines(report: dict[str, Any], opts: Options) -> list[str]:
    rows = [r for r in report["throughput"]["medians"] if r.get("rps_vs_untraced") is not None]
    sink = report.get("tracing", {})
    lines = [
        "",
        f"tracing on ({TRACED}, {opts.trace_ratio:g} of requests sampled) over off ({UNTRACED}), req/s;"
        f" {sink.get('exports', 0)} OTLP exports, {sink.get('bytes', 0):,} bytes received",
    ]
    lines += [f"  {r['era']} c={r['connections']}: {r['rps_vs_untraced']:.3f}" for r in rows]
    return lines


def _paired_lines(paired: list[dict[str, Any]]) -> list[str]:
    lines = [
        "",
        f"paired, rep by rep (each server in the same rep as {UNTRACED}): its req/s over {UNTRACED}'s,"
        f" and {UNTRACED}'s CPU us/req over its;",
        f"median [95% interval of the median]; {TWIN}, if run, is the same code in another process",
    ]
    for point in paired:
        rps, cpu = point["rps"], point["cpu"]
        lines.append(
            f"  {point['server']:<26} {point['era']} c={point['connections']:<3}"
            f" req/s {_fmt(rps['median'], '.3f')}"
            f" [{_fmt(rps['low'], '.3f')}, {_fmt(rps['high'], '.3f')}]"
            f"  CPU {_fmt(cpu['median'], '.3f')} [{_fmt(cpu['low'], '.3f')}, {_fmt(cpu['high'], '.3f')}]"
            f"  ({len(rps['values'])} pairs)"
        )
    return lines


def render(report: dict[str, Any], opts: Options) -> str:
    lines: list[str] = []
    avail = report["servers"]
    if "throughput" in report:
        for era in opts.eras:
            lines += [
                "",
                f"{ERA_TITLES[era]}",
                f"median of {opts.reps} x {opts.duration:.0f} s; wrk -t1 on CPU {opts.client_cpu},"
                f" server on CPU {opts.server_cpu}",
                "conns  server              req/s   p50 ms   p99 ms  vs sdk  vs bare  CPU us/req"
                "  CPU vs bare",
            ]
            for row in report["throughput"]["medians"]:
                if row["era"] != era:
                    continue
                info = avail.get(row["server"], {}).get(era, {})
                if not info.get("available", False):
                    lines.append(f"{row['connections']:>5}  {row['server']:<14} unavailable")
                    continue
                lines.append(
                    f"{row['connections']:>5}  {row['server']:<14} {_fmt(row['rps'], ',.0f'):>9}"
                    f" {_fmt(row['p50_ms'], '.2f'):>8} {_fmt(row['p99_ms'], '.2f'):>8}"
                    f" {_fmt(row['rps_vs_sdk'], '.2f', 'x'):>7} {_fmt(row['rps_vs_ceiling'], '.2f', 'x'):>8}"
                    f" {_fmt(row.get('cpu_us'), '.1f'):>11} {_fmt(row.get('cpu_vs_ceiling'), '.2f', 'x'):>12}"
                    + (
                        f"  {_fmt(row['rps_vs_memory'], '.2f', 'x')} of memory"
                        if "rps_vs_memory" in row
                        else ""
                    )
                    + (
                        f"  mcpserve is {_fmt(row['current_vs_baseline'], '.3f', 'x')} of it"
                        if "current_vs_baseline" in row
                        else ""
                    )
                    + (
                        ""
                        if row["valid_runs"] == row["runs"]
                        else f"  ({row['valid_runs']}/{row['runs']} valid)"
                    )
                )
    if "throughput" in report and opts.tracing:
        lines += _tracing_lines(report, opts)
    if report.get("throughput", {}).get("paired"):
        lines += _paired_lines(report["throughput"]["paired"])
    if "sessions" in report:
        sess = report["sessions"]
        lines += [
            "",
            f"2025-era sessions: initialize + notifications/initialized, {sess['sessions']} per run,"
            f" {sess['concurrency']} concurrent; median of {opts.reps} fresh servers",
            "server         sessions/s  vs sdk  vs bare  KiB/session  mem vs sdk",
        ]
        for row in sess["medians"]:
            if row["valid_runs"] == 0:
                lines.append(f"{row['server']:<14} unavailable")
                continue
            lines.append(
                f"{row['server']:<14} {_fmt(row['sessions_per_s'], ',.0f'):>10}"
                f" {_fmt(row['rate_vs_sdk'], '.2f', 'x'):>7} {_fmt(row['rate_vs_ceiling'], '.2f', 'x'):>8}"
                f" {_fmt(row['kib_per_session'], '.2f'):>12} {_fmt(row['memory_vs_sdk'], '.2f', 'x'):>10}"
                + (
                    f"  in Redis: {_fmt(row.get('redis_bytes_per_session'), '.0f')} B/session (used_memory),"
                    f" hash {_fmt(row.get('redis_session_hash'), '.0f')} B"
                    f" + index {_fmt(row.get('redis_index_per_session'), '.0f')} B (MEMORY USAGE)"
                    if "redis_bytes_per_session" in row
                    else ""
                )
            )
    missing = [
        f"  {name} ({era}): {info.get('reason')}"
        for name, eras in avail.items()
        for era, info in eras.items()
        if not info.get("available", False)
    ]
    if missing:
        lines += ["", "unavailable:", *missing]
    return "\n".join(lines)


# --- main --------------------------------------------------------------------------------------------


def _start_redis(opts: Options) -> BenchRedis | None:
    """The private Redis, if a selected server keeps its state there; None (and those servers are
    reported unavailable) if it cannot start."""
    if not any(spec.redis for name in opts.servers for spec in SERVERS[name]):
        return None
    cpu = opts.client_cpu if opts.redis_cpu is None else opts.redis_cpu
    try:
        return start_redis(cpu)
    except RuntimeError as exc:
        _say(f"bench: {exc}")
        return None


def _measure(opts: Options, report: dict[str, Any], log_dir: Path) -> None:
    redis = _start_redis(opts)
    with ServerPool(opts.server_cpu, log_dir, opts.start_timeout) as pool:
        pool.redis_url = redis.url if redis is not None else None
        try:
            if not opts.skip_throughput:
                report["throughput"] = throughput_phase(opts, pool, report["servers"])
            if not opts.skip_sessions and "2025" in opts.eras:
                report["sessions"] = session_phase(opts, pool, report["servers"], redis)
        except KeyboardInterrupt:
            _say("bench: interrupted; servers stopped, partial results written")
        finally:
            if redis is not None:
                pool.stop_all()
                redis.stop()


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    if shutil.which("taskset") is None:
        _say("bench: taskset not found (util-linux)")
        return 2
    if not opts.skip_throughput and shutil.which("wrk") is None:
        _say("bench: wrk not found: apt-get install -y wrk (or pass --skip-throughput)")
        return 2
    cpus = os.sched_getaffinity(0)
    if not {opts.server_cpu, opts.client_cpu} <= cpus:
        _say(f"bench: CPUs {opts.server_cpu}/{opts.client_cpu} not available (have {sorted(cpus)})")
        return 2
    if opts.server_cpu == opts.client_cpu:
        _say("bench: warning: server and client share a CPU; figures will be pessimistic")
    os.sched_setaffinity(0, {opts.client_cpu})  # the harness's own client (sessions) runs beside wrk
    os.environ["BENCH_ECHO"] = opts.tool  # read by apps/echo.py and apps/sdk_echo.py

    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    output = opts.output or opts.results_dir / f"{stamp}.json"
    log_dir = opts.results_dir / f"{stamp}-logs"
    report: dict[str, Any] = {
        "meta": {
            "timestamp": stamp,
            "host": platform.node(),
            "kernel": platform.release(),
            "cpu_model": _cpu_model(),
            "cpus": os.cpu_count(),
            "versions": _versions(),
            "git": _git(),
            "logs": str(log_dir),
        },
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(opts).items()},
        "servers": {name: {} for name in opts.servers},
    }
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        if opts.tracing:
            sink = stack.enter_context(otlp_sink())
            # Read by the traced server only (tracing is off in every other one).
            os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = sink.url
            os.environ["OTEL_TRACES_SAMPLER_ARG"] = str(opts.trace_ratio)
        _measure(opts, report, log_dir)
        if opts.tracing:
            report["tracing"] = {"ratio": opts.trace_ratio, "exports": sink.exports, "bytes": sink.bytes}
    report["meta"]["seconds"] = round(time.monotonic() - started, 1)

    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"echo tool: {opts.tool} def in mcpserve and the SDK")
    print(render(report, opts))
    print(f"\nwrote {output} ({report['meta']['seconds']:.0f} s)")
    measured = any(
        r["valid"] for phase in ("throughput", "sessions") for r in report.get(phase, {}).get("runs", [])
    )
    return 0 if measured else 1
