"""`python -m bench.cost`: CPU instructions per tools/call request, counted, not timed.

Throughput on a shared 2-core machine swings by ±15% between runs; instruction counts do not.
This drives each server's ASGI app in-process (no sockets, so uvicorn's own share, the same for
every server, is left out) under valgrind's callgrind, twice with different request counts, and
reports the difference per request: the app's own per-request work, warm-up and import excluded.

    .venv/bin/python -m bench.cost                 # mcpserve (sync and async echo), SDK, bare
    .venv/bin/python -m bench.cost --servers mcpserve --tool async

A single measurement (`--measure SERVER TOOL N`) is what runs under valgrind.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]

_META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
}
BODY = orjson.dumps(
    {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": "hello"}, "_meta": _META},
    }
)
HEADERS = [
    (b"host", b"127.0.0.1:8000"),
    (b"content-type", b"application/json"),
    (b"accept", b"application/json, text/event-stream"),
    (b"mcp-protocol-version", b"2026-07-28"),
    (b"mcp-method", b"tools/call"),
    (b"mcp-name", b"echo"),
    (b"content-length", str(len(BODY)).encode()),
]
SCOPE = {
    "type": "http",
    "asgi": {"version": "3.0"},
    "http_version": "1.1",
    "method": "POST",
    "scheme": "http",
    "path": "/mcp",
    "raw_path": b"/mcp",
    "root_path": "",
    "query_string": b"",
    "headers": HEADERS,
    "client": ("127.0.0.1", 50000),
    "server": ("127.0.0.1", 8000),
}
WARMUP = 200


def _mcpserve_app() -> App:
    from mcpserve.config import load_settings  # noqa: PLC0415 - imported inside the measured process
    from mcpserve.loader import load_app  # noqa: PLC0415
    from mcpserve.runtime import build_http_app, configure_logging  # noqa: PLC0415

    settings = load_settings({"auth": "none", "rate_limit_per_minute": 0, "rate_limit_per_hour": 0})
    # As `mcpserve serve` runs: JSON lines, one per request, here into /dev/null.
    configure_logging(settings, open(os.devnull, "wb"))  # noqa: SIM115 - lives as long as the process
    return build_http_app(load_app(str(ROOT / "bench" / "apps" / "echo.py"), settings), settings)


def _bare_app() -> App:
    from bench.apps.bare_echo import app  # noqa: PLC0415

    return app


def _sdk_app() -> App:
    from bench.apps.sdk_echo import app  # noqa: PLC0415

    asgi: App = app.streamable_http_app(json_response=True, stateless_http=True, host="127.0.0.1")
    return asgi


APPS: dict[str, Callable[[], App]] = {"mcpserve": _mcpserve_app, "sdk": _sdk_app, "bare": _bare_app}


async def _lifespan(app: App) -> Callable[[], Awaitable[None]]:
    """Start the app's lifespan; return the function that shuts it down."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    started, stopped = asyncio.Event(), asyncio.Event()

    async def send(message: dict[str, Any]) -> None:
        (started if message["type"].startswith("lifespan.startup") else stopped).set()

    task = asyncio.ensure_future(app({"type": "lifespan", "asgi": {"version": "3.0"}}, inbox.get, send))
    await inbox.put({"type": "lifespan.startup"})
    await started.wait()

    async def shutdown() -> None:
        await inbox.put({"type": "lifespan.shutdown"})
        await stopped.wait()
        await task

    return shutdown


async def _one(app: App) -> None:
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": BODY, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    await app(dict(SCOPE), receive, send)
    if status != [200]:
        raise SystemExit(f"request failed: HTTP {status}")


async def _measure(server: str, requests: int) -> None:
    app = APPS[server]()
    shutdown = await _lifespan(app)
    for _ in range(WARMUP + requests):
        await _one(app)
    await shutdown()


def _instructions(server: str, tool: str, requests: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        done = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                sys.executable,
                "-m",
                "bench.cost",
                "--measure",
                server,
                tool,
                str(requests),
            ],
            cwd=ROOT,
            env={**os.environ, "BENCH_ECHO": tool, "PYTHONHASHSEED": "0"},
            capture_output=True,
            text=True,
            check=False,
        )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"{server}/{tool}: valgrind run failed\n{done.stderr[-2000:]}")
    return int(found.group(1))


def per_request(server: str, tool: str, low: int, high: int) -> float:
    return (_instructions(server, tool, high) - _instructions(server, tool, low)) / (high - low)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--servers", default="mcpserve,sdk,bare")
    parser.add_argument("--tool", choices=["sync", "async", "both"], default="both")
    parser.add_argument("--requests", type=int, default=500, help="extra requests in the second run")
    parser.add_argument("--measure", nargs=3, metavar=("SERVER", "TOOL", "N"), help=argparse.SUPPRESS)
    opts = parser.parse_args(argv)
    if opts.measure:
        import uvloop  # noqa: PLC0415 - the servers run on uvloop

        uvloop.run(_measure(opts.measure[0], int(opts.measure[2])))
        return 0
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is needed: apt-get install -y valgrind")
    tools = ["sync", "async"] if opts.tool == "both" else [opts.tool]
    results: dict[str, float] = {}
    for server in opts.servers.split(","):
        for tool in ["async"] if server == "bare" else tools:
            label = server if server == "bare" else f"{server} ({tool} echo)"
            results[label] = per_request(server, tool, 100, 100 + opts.requests)
            print(f"{label:24} {results[label] / 1000:8.1f} k instructions / request", flush=True)
    if "bare" in results:
        for label, count in results.items():
            if label != "bare":
                print(f"{label:24} {count / results['bare']:8.2f} x bare")
    print(json.dumps({k: round(v) for k, v in results.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
