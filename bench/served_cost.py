"""`python -m bench.served_cost`: CPU instructions per tools/call in the served process, counted.

`bench.cost` drives the ASGI app in-process and leaves uvicorn and mcpserve's HTTP protocol out.
This one counts the whole server as `python -m bench` starts it (`mcpserve serve` on loopback,
the same flags and environment), under valgrind's callgrind, while a client in this (uncounted)
process sends the wrk scripts' requests one at a time on one keep-alive connection: a 2026-07-28
`tools/call`, or one on an initialized 2025-11-25 session. Two runs per server and era, after
the same warm-up, differ only in the number of calls; the difference per call is the figure.
With `--baseline DIR` another checkout (its own .venv) is counted the same way, as `bench
--baseline` runs it, each of its runs beside the same run of mcpserve (see `per_call`), so a
change is compared against the code before it.

    .venv/bin/python -m bench.served_cost --baseline ../baseline            # both eras, ~10 min
    .venv/bin/python -m bench.served_cost --eras 2025 --calls 1000

System calls are not in the count (callgrind sees user space only); `strace -c -f` shows those.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.servers import _SERVING, _UNLIMITED, HOST, PATH, ROOT, free_port

WARMUP = 300
LEGACY = "2025-11-25"
_TEXT = "hello from wrk"
_CALL_2026 = (
    ',"method":"tools/call","params":{"name":"echo","arguments":{"text":"' + _TEXT + '"},"_meta":'
    '{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},'
    '"io.modelcontextprotocol/clientInfo":{"name":"wrk","version":"0"}}}}'
)
_CALL_2025 = ',"method":"tools/call","params":{"name":"echo","arguments":{"text":"' + _TEXT + '"}}}'
_BASE = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


class _Connection:
    """One keep-alive HTTP/1.1 connection; answers read by Content-Length (JSON only)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock = socket.create_connection((HOST, port))
        self.buffer = b""

    def post(self, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        head = (
            f"POST {PATH} HTTP/1.1\r\nHost: {HOST}:{self.port}\r\n{lines}Content-Length: {len(body)}\r\n\r\n"
        )
        self.sock.sendall(head.encode() + body)
        while b"\r\n\r\n" not in self.buffer:
            self._read()
        raw, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        status_line, *header_lines = raw.decode("latin-1").split("\r\n")
        answer = {k.lower(): v for k, v in (line.split(": ", 1) for line in header_lines)}
        length = int(answer.get("content-length", "0"))
        while len(self.buffer) < length:
            self._read()
        payload, self.buffer = self.buffer[:length], self.buffer[length:]
        return int(status_line.split(" ", 2)[1]), answer, payload

    def _read(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise SystemExit("the server closed the connection")
        self.buffer += chunk


def _drive(port: int, era: str, calls: int) -> None:
    conn = _Connection(port)
    headers = {**_BASE, "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "echo"}
    tail = _CALL_2026
    if era == "2025":
        init = {
            "jsonrpc": "2.0",
            "id": 0,
            "method": "initialize",
            "params": {
                "protocolVersion": LEGACY,
                "capabilities": {},
                "clientInfo": {"name": "cost", "version": "1"},
            },
        }
        legacy = {**_BASE, "MCP-Protocol-Version": LEGACY}
        _, answer, _ = conn.post(json.dumps(init).encode(), legacy)
        headers = {**legacy, "Mcp-Session-Id": answer["mcp-session-id"]}
        status, _, _ = conn.post(b'{"jsonrpc":"2.0","method":"notifications/initialized"}', headers)
        if status != 202:
            raise SystemExit(f"notifications/initialized answered {status}")
        tail = _CALL_2025
    for request_id in range(1, WARMUP + calls + 1):
        status, _, payload = conn.post(b'{"jsonrpc":"2.0","id":%d' % request_id + tail.encode(), headers)
        if status != 200 or b'"isError":false' not in payload:
            raise SystemExit(f"bad answer: {status} {payload[:300]!r}")
    conn.sock.close()


def _instructions(checkout: Path, era: str, calls: int, env: dict[str, str]) -> int:
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "valgrind.log"
        command = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={Path(tmp) / 'callgrind.out'}",
            str(checkout / ".venv" / "bin" / "python"),
            "-m",
            "mcpserve",
            "serve",
            str(checkout / "bench" / "apps" / "echo.py"),
            *("--transport", "http", "--auth", "none", "--host", HOST, "--port", str(port)),
        ]
        with log.open("wb") as out:
            server = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=ROOT,
                env={**os.environ, **env, "PYTHONHASHSEED": "0"},
            )
        try:
            deadline = time.monotonic() + 300
            while True:
                try:
                    socket.create_connection((HOST, port)).close()
                    break
                except OSError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit(f"server did not start: {log.read_text()[-2000:]}") from None
                    time.sleep(0.5)
            _drive(port, era, calls)
        finally:
            server.send_signal(signal.SIGINT)  # a clean exit: callgrind writes its totals
            server.wait(timeout=300)
        found = re.search(r"Collected : (\d+)", log.read_text())
    if found is None:
        raise SystemExit(f"{checkout} {era}: no callgrind total")
    return int(found.group(1))


def per_call(servers: dict[str, tuple[Path, dict[str, str]]], era: str, calls: int) -> dict[str, float]:
    """Instructions per call of each server; each run of one server beside the same run of the others.

    The count is not quite independent of time: timers (uvicorn's tick, the sweepers) fire per
    second of wall clock, and under valgrind a loaded machine stretches a run. Run side by side,
    the servers see the same load, so the comparison holds even when the absolute figures drift
    (by up to 2-3 % on a busy 2-core machine).
    """
    counts: dict[str, list[int]] = {name: [] for name in servers}
    with ThreadPoolExecutor(len(servers)) as pool:
        for n in (100, 100 + calls):
            runs = {
                name: pool.submit(_instructions, checkout, era, n, env)
                for name, (checkout, env) in servers.items()
            }
            for name, run in runs.items():
                counts[name].append(run.result())
    return {name: (high - low) / calls for name, (low, high) in counts.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--eras", default="2025,2026")
    parser.add_argument("--calls", type=int, default=2000, help="extra calls in the second run")
    parser.add_argument("--baseline", type=Path, help="another checkout with its own .venv (make install)")
    opts = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is needed: apt-get install -y valgrind")
    # As bench/servers.py starts them: the baseline without settings older code does not have.
    servers = {"mcpserve": (ROOT, _SERVING)}
    if opts.baseline is not None:
        servers["baseline"] = (opts.baseline.resolve(), _UNLIMITED)
    results: dict[str, float] = {}
    for era in opts.eras.split(","):
        for name, count in per_call(servers, era, opts.calls).items():
            results[f"{name} {era}"] = count
            print(f"{name + ' ' + era:20} {count / 1000:8.1f} k instructions / call", flush=True)
        if opts.baseline is not None:
            ratio = results[f"mcpserve {era}"] / results[f"baseline {era}"]
            print(f"{'':20} {ratio:8.3f} x baseline ({era})", flush=True)
    print(json.dumps({k: round(v) for k, v in results.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
