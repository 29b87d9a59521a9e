"""`python -m bench.streams`: what an open 2025-era GET stream costs the replica that holds it.

For each state backend (memory, and Redis with the bench's private redis-server) one server is
started; the bench opens N sessions, reads the server's RSS, then opens one standalone GET stream
on each session (each on its own connection, held open after its priming event) and reads the
RSS again. The difference over N is the cost of one open stream in the replica: the connection
and whatever the stream holds there, what a client's idle GET costs a deployment.

    .venv/bin/python -m bench.streams                       # 10,000 streams, memory and redis
    .venv/bin/python -m bench.streams --streams 2000 --states memory

The target (issue 14): at most 8 KiB per open stream, so 10,000 streams fit in under 100 MB.
RSS per stream depends little on machine load, but run it on a quiet machine for the record.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.httpclient import Connection, open_session
from bench.redis_server import BenchRedis, start_redis
from bench.servers import HOST, SERVERS, RunningServer, ServerPool, ServerSpec

__all__ = ["main", "measure"]

KiB = 1024
_SETTLE = 1.0  # seconds for the server to finish what the last stream started


async def _sessions(port: int, count: int, workers: int = 16) -> list[str]:
    made: list[str] = []

    async def worker(share: int) -> None:
        conn = Connection(HOST, port, timeout=60)
        try:
            for _ in range(share):
                made.append(await open_session(conn))
        finally:
            await conn.close()

    shares = [count // workers + (1 if n < count % workers else 0) for n in range(workers)]
    await asyncio.gather(*(worker(share) for share in shares if share))
    return made


async def _open_stream(port: int, session: str) -> asyncio.StreamWriter:
    """A GET stream on its own connection, returned once its priming event arrived."""
    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(
        (
            f"GET /mcp HTTP/1.1\r\nHost: {HOST}:{port}\r\nAccept: text/event-stream\r\n"
            f"Mcp-Session-Id: {session}\r\nMCP-Protocol-Version: 2025-11-25\r\n\r\n"
        ).encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"GET stream refused: {head.splitlines()[0]!r}")
    await reader.readuntil(b"retry:")
    return writer


async def _open_streams(port: int, sessions: list[str], concurrency: int = 64) -> list[asyncio.StreamWriter]:
    held: list[asyncio.StreamWriter] = []
    pending = iter(sessions)

    async def worker() -> None:
        for session in pending:
            held.append(await _open_stream(port, session))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return held


async def _measure(server: RunningServer, count: int) -> dict[str, Any]:
    sessions = await _sessions(server.port, count)
    await asyncio.sleep(_SETTLE)  # a measurement pause, not synchronisation: RSS is sampled
    before = server.rss_kib()
    started = time.monotonic()
    held = await _open_streams(server.port, sessions)
    opened = time.monotonic() - started
    await asyncio.sleep(_SETTLE)
    after = server.rss_kib()
    for writer in held:
        writer.close()
    return {
        "streams": len(held),
        "rss_before_kib": before,
        "rss_after_kib": after,
        "kib_per_stream": round((after - before) / len(held), 2),
        "mb_for_10000": round((after - before) / len(held) * 10_000 / 1000, 1),
        "open_seconds": round(opened, 2),
    }


def measure(state: str, count: int, cpu: int, log_dir: Path, redis: BenchRedis | None) -> dict[str, Any]:
    base = SERVERS["mcpserve-redis" if state == "redis" else "mcpserve"][0]
    # Enough room for every session and connection the run makes; idle GETs never time out here.
    env = {
        **base.env,
        "MCPSERVE_MAX_SESSIONS": str(count + 100),
        "MCPSERVE_MAX_SESSIONS_PER_PRINCIPAL": str(count + 100),
    }
    spec = ServerSpec(base.name, base.config, base.command, base.eras, env=env, redis=base.redis)
    with ServerPool(cpu=cpu, log_dir=log_dir, start_timeout=60) as pool:
        pool.redis_url = redis.url if redis is not None else None
        server = pool.start(spec, f"streams-{state}")
        return {"state": state, **asyncio.run(_measure(server, count))}


def _raise_descriptor_limit(count: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(hard, count * 2 + 1000)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))  # the server inherits it


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.streams", description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=10_000, help="GET streams (and sessions) to open")
    parser.add_argument("--states", default="memory,redis", help="state backends: memory, redis")
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--redis-cpu", type=int, default=1)
    parser.add_argument("--output", type=Path, help="write the figures as JSON here too")
    opts = parser.parse_args(argv)
    states = [state.strip() for state in opts.states.split(",") if state.strip()]
    unknown = set(states) - {"memory", "redis"}
    if unknown or opts.streams < 1:
        parser.error(f"--states takes memory and redis; --streams at least 1 (got {sorted(unknown)})")
    _raise_descriptor_limit(opts.streams)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-streams-") as folder:
        redis = start_redis(opts.redis_cpu) if "redis" in states else None
        try:
            for state in states:
                result = measure(state, opts.streams, opts.server_cpu, Path(folder), redis)
                results.append(result)
                print(
                    f"{state:6}  {result['streams']} open GET streams: "
                    f"{result['kib_per_stream']} KiB each ({result['mb_for_10000']} MB for 10,000), "
                    f"RSS {result['rss_before_kib'] / 1024:.1f} -> {result['rss_after_kib'] / 1024:.1f} MiB"
                )
        finally:
            if redis is not None:
                redis.stop()
    if opts.output is not None:
        opts.output.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
