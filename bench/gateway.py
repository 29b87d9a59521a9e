"""`python -m bench.gateway`: the gateway against supergateway and mcp-proxy, in one run.

All three serve the same stdio upstream (the echo app on mcpserve's stdio transport, rate limits
off) over Streamable HTTP; wrk drives tools/call through each (bench.harness, 2025-11-25 on one
session: the era all three speak; 2026-07-28 for the gateway alone). Then the same upstream is
called directly over stdio by an in-process client at the same concurrencies, for the overhead a
gateway adds. The summary gives, per connection count, the gateway's throughput over the better
of the two peers, and its p50 latency over the direct call's.

    .venv/bin/python -m bench.gateway                              # 3 reps x 5 s, c = 1, 16, 64
    .venv/bin/python -m bench.gateway --reps 1 --duration 2 --connections 1,16   # a smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import orjson

from bench.harness import main as harness_main
from bench.servers import BENCH_DIR, STDIO_ECHO

PEERS = ("supergateway", "mcp-proxy")


async def _direct(connections: int, seconds: float, cpu: int) -> dict[str, float]:
    """Requests/s and latency percentiles calling the stdio upstream directly, ``connections`` at a time."""
    process = await asyncio.create_subprocess_exec(
        "taskset",
        "-c",
        str(cpu),
        *STDIO_ECHO,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        limit=16 * 1024 * 1024,
    )
    assert process.stdin is not None and process.stdout is not None
    stdin, stdout = process.stdin, process.stdout
    waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
    ids = itertools.count(1)

    async def read() -> None:
        while line := await stdout.readline():
            message = orjson.loads(line)
            future = waiting.pop(message.get("id"), None)
            if future is not None and not future.done():
                future.set_result(message)

    async def call(method: str, params: dict[str, Any]) -> dict[str, Any]:
        request_id = next(ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        waiting[request_id] = future
        stdin.write(
            orjson.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}) + b"\n"
        )
        return await future

    reader = asyncio.create_task(read())
    try:
        init = {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "bench", "version": "0"},
        }
        await asyncio.wait_for(call("initialize", init), 30)
        stdin.write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
        latencies: list[float] = []
        end = time.monotonic() + seconds

        async def worker() -> None:
            while time.monotonic() < end:
                start = time.perf_counter()
                answer = await call("tools/call", {"name": "echo", "arguments": {"text": "hello"}})
                if answer.get("result", {}).get("isError") is not False:
                    raise RuntimeError(f"direct call failed: {answer}")
                latencies.append(time.perf_counter() - start)

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.monotonic() - started
    finally:
        reader.cancel()
        stdin.close()
        process.kill()
        await process.wait()
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


def _summary(report: dict[str, Any], direct: dict[int, dict[str, float]]) -> str:
    rows = report.get("throughput", {}).get("medians", [])
    lines = ["", "gateway vs peers (2025-11-25) and vs the upstream called directly over stdio"]
    lines.append(
        "conns  gateway req/s  best peer req/s  x best  direct req/s  gateway p50  direct p50  overhead p50"
    )
    for conns in sorted(direct):
        mine = {r["server"]: r for r in rows if r["era"] == "2025" and r["connections"] == conns}
        gateway = mine.get("gateway", {}).get("rps")
        peers = [mine[p]["rps"] for p in PEERS if mine.get(p, {}).get("rps")]
        best = max(peers) if peers else None
        ratio = f"{gateway / best:6.2f}x" if gateway and best else "     —"
        g50 = mine.get("gateway", {}).get("p50_ms")
        d = direct[conns]
        overhead = f"{g50 - d['p50_ms']:9.2f} ms" if g50 is not None else "        —"
        lines.append(
            f"{conns:>5}  {gateway or 0:>13,.0f}  {best or 0:>15,.0f}  {ratio}  {d['rps']:>12,.0f}"
            f"  {(g50 or 0):>8.2f} ms  {d['p50_ms']:>7.2f} ms  {overhead}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--connections", default="1,16,64")
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--server-cpu", type=int, default=0)
    args = parser.parse_args(argv)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    output = BENCH_DIR / "results" / f"{stamp}-gateway.json"
    code = harness_main(
        [
            "--servers",
            "gateway," + ",".join(PEERS),
            "--eras",
            "2025,2026",
            "--connections",
            args.connections,
            "--duration",
            str(args.duration),
            "--reps",
            str(args.reps),
            "--warmup",
            str(args.warmup),
            "--server-cpu",
            str(args.server_cpu),
            "--skip-sessions",
            "--output",
            str(output),
        ]
    )
    if code != 0:
        return code
    direct = {
        int(c): asyncio.run(_direct(int(c), args.duration, args.server_cpu))
        for c in args.connections.split(",")
    }
    report = json.loads(Path(output).read_text())
    report["direct_stdio"] = {str(c): v for c, v in direct.items()}
    Path(output).write_text(json.dumps(report, indent=2) + "\n")
    print(_summary(report, direct))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("BENCH_ECHO", "sync")
    raise SystemExit(main())
