"""`python -m bench.cost`: CPU instructions per tools/call request, counted, not timed.

Throughput on a shared 2-core machine swings by ±15% between runs; instruction counts do not.
This drives each server's ASGI app in-process (no sockets, so uvicorn's own share, the same for
every server, is left out) under valgrind's callgrind, twice with different request counts, and
reports the difference per request: the app's own per-request work, warm-up and import excluded.

    .venv/bin/python -m bench.cost                 # mcpserve (sync and async echo), SDK, bare
    .venv/bin/python -m bench.cost --servers mcpserve --tool async
    .venv/bin/python -m bench.cost --servers mcpserve --tool async --eras 2026,2025 --tracing off,0.1,1

With `--tracing`, mcpserve is counted once per mode: `off`, or on at a sampling ratio, exporting
over OTLP/HTTP to a sink in this (uncounted) process. callgrind counts the whole measured process,
every thread, so the batch span processor's encoding and export are in the figure; the provider
is shut down (its queue flushed) before the process ends.

A single measurement (`--measure SERVER TOOL N`) is what runs under valgrind.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson

from bench.otlp_sink import otlp_sink

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
LEGACY = "2025-11-25"
WARMUP = 200
# The measured process's tracing mode: unset (off) or a sampling ratio; the sink's URL beside it.
TRACE_RATIO_ENV = "BENCH_TRACE_RATIO"
SINK_ENV = "BENCH_OTLP_SINK"
ERA_ENV = "BENCH_ERA"


def _trace_overrides() -> dict[str, Any]:
    ratio = os.environ.get(TRACE_RATIO_ENV)
    if ratio is None:
        return {}
    # As bench's --tracing runs mcpserve-traced: roots sampled at the ratio, OTLP/HTTP to the sink.
    # Under valgrind a request takes ~50 times as long, so the 5 s export timer would fire every
    # hundred requests or so, a different number of times from run to run, where a server under
    # load exports full batches of 512: exports here happen when a batch is full, or at the end.
    return {
        "tracing": True,
        "otel_traces_sampler": "parentbased_traceidratio",
        "otel_traces_sampler_arg": float(ratio),
        "otel_exporter_otlp_endpoint": os.environ[SINK_ENV],
        "otel_bsp_schedule_delay": 3_600_000,
    }


def _mcpserve_app() -> App:
    from mcpserve.config import load_settings  # noqa: PLC0415 - imported inside the measured process
    from mcpserve.loader import load_app  # noqa: PLC0415
    from mcpserve.runtime import build_http_app, configure_logging, configure_tracing  # noqa: PLC0415

    settings = load_settings(
        {"auth": "none", "rate_limit_per_minute": 0, "rate_limit_per_hour": 0, **_trace_overrides()}
    )
    # As `mcpserve serve` runs: JSON lines, one per request, here into /dev/null.
    configure_logging(settings, open(os.devnull, "wb"))  # noqa: SIM115 - lives as long as the process
    configure_tracing(settings)
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


async def _one(
    app: App, scope: dict[str, Any] = SCOPE, body: bytes = BODY, expect: int = 200
) -> list[tuple[bytes, bytes]]:
    """One request; the response's headers."""
    head: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            head.append(message)

    await app(dict(scope), receive, send)
    if [m["status"] for m in head] != [expect]:
        raise SystemExit(f"request failed: HTTP {[m['status'] for m in head]}")
    return list(head[0].get("headers", []))


def _legacy_scope(body: bytes, session: bytes | None) -> dict[str, Any]:
    headers = [
        (name, value)
        for name, value in HEADERS
        if name not in {b"mcp-protocol-version", b"mcp-method", b"mcp-name", b"content-length"}
    ]
    headers += [(b"mcp-protocol-version", LEGACY.encode()), (b"content-length", str(len(body)).encode())]
    if session is not None:
        headers.append((b"mcp-session-id", session))
    return {**SCOPE, "headers": headers}


async def _legacy_session(app: App) -> tuple[dict[str, Any], bytes]:
    """A 2025-11-25 session opened as the wrk harness opens it; the tools/call request on it."""
    init = orjson.dumps(
        {
            "jsonrpc": "2.0",
            "id": 0,
            "method": "initialize",
            "params": {
                "protocolVersion": LEGACY,
                "capabilities": {},
                "clientInfo": {"name": "bench.cost", "version": "1"},
            },
        }
    )
    headers = dict(await _one(app, _legacy_scope(init, None), init))
    session = headers.get(b"mcp-session-id")
    if session is None:
        raise SystemExit("initialize answered without Mcp-Session-Id")
    ready = orjson.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"})
    await _one(app, _legacy_scope(ready, session), ready, expect=202)
    call = orjson.dumps(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": "hello"}},
        }
    )
    return _legacy_scope(call, session), call


async def _measure(server: str, requests: int) -> None:
    app = APPS[server]()
    shutdown = await _lifespan(app)
    scope, body = SCOPE, BODY
    if os.environ.get(ERA_ENV) == "2025":
        scope, body = await _legacy_session(app)
    for _ in range(WARMUP + requests):
        await _one(app, scope, body)
    await shutdown()
    if TRACE_RATIO_ENV in os.environ:
        from opentelemetry import trace  # noqa: PLC0415 - only when traced

        # Export what the span processor still holds, inside the counted process.
        trace.get_tracer_provider().shutdown()  # type: ignore[attr-defined]


def _instructions(server: str, tool: str, requests: int, env: dict[str, str]) -> int:
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
            env={**os.environ, "BENCH_ECHO": tool, "PYTHONHASHSEED": "0", **env},
            capture_output=True,
            text=True,
            check=False,
        )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"{server}/{tool}: valgrind run failed\n{done.stderr[-2000:]}")
    return int(found.group(1))


def per_request(server: str, tool: str, low: int, high: int, env: dict[str, str] | None = None) -> float:
    env = env or {}
    return (_instructions(server, tool, high, env) - _instructions(server, tool, low, env)) / (high - low)


def _mode_env(mode: str, sink: str) -> dict[str, str]:
    return {} if mode == "off" else {TRACE_RATIO_ENV: str(float(mode)), SINK_ENV: sink}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--servers", default="mcpserve,sdk,bare")
    parser.add_argument("--tool", choices=["sync", "async", "both"], default="both")
    parser.add_argument("--requests", type=int, default=500, help="extra requests in the second run")
    parser.add_argument("--eras", default="2026", help="mcpserve's eras: 2026, 2025 (one session) or both")
    parser.add_argument(
        "--tracing",
        default="off",
        help="mcpserve's tracing modes: off and/or sampling ratios, e.g. off,0.1,1",
    )
    parser.add_argument("--measure", nargs=3, metavar=("SERVER", "TOOL", "N"), help=argparse.SUPPRESS)
    opts = parser.parse_args(argv)
    if opts.measure:
        import uvloop  # noqa: PLC0415 - the servers run on uvloop

        # Which requests a ratio samples is random: a fixed seed samples the same ones every run.
        random.seed(0)
        uvloop.run(_measure(opts.measure[0], int(opts.measure[2])))
        return 0
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is needed: apt-get install -y valgrind")
    tools = ["sync", "async"] if opts.tool == "both" else [opts.tool]
    eras = opts.eras.split(",")
    modes = opts.tracing.split(",")
    results: dict[str, float] = {}
    with otlp_sink() as sink:
        for server in opts.servers.split(","):
            mcpserve = server == "mcpserve"
            for tool in ["async"] if server == "bare" else tools:
                for era in eras if mcpserve else ["2026"]:
                    for mode in modes if mcpserve else ["off"]:
                        label = server if server == "bare" else f"{server} ({tool} echo)"
                        if mcpserve and (len(eras) > 1 or era != "2026"):
                            label += f" {era}"
                        if mcpserve and mode != "off":
                            label += f" tracing {mode}"
                        env = {ERA_ENV: era, **_mode_env(mode, sink.url)}
                        spans, exports = sink.spans, sink.exports
                        results[label] = per_request(server, tool, 100, 100 + opts.requests, env)
                        exported = (
                            f"  ({sink.spans - spans} spans in {sink.exports - exports} exports)"
                            if mode != "off"
                            else ""
                        )
                        print(
                            f"{label:40} {results[label] / 1000:8.1f} k instructions / request{exported}",
                            flush=True,
                        )
    if "bare" in results:
        for label, count in results.items():
            if label != "bare":
                print(f"{label:40} {count / results['bare']:8.2f} x bare")
    print(json.dumps({k: round(v) for k, v in results.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
