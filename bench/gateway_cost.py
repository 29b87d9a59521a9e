"""`python -m bench.gateway_cost`: instructions per forwarded tools/call, gateway and child apart.

Wall-clock figures swing on a shared machine; instruction counts do not. This starts
`mcpserve gateway` with the bench's stdio echo upstream (as `python -m bench.gateway` does), with
one of the two processes under callgrind (instrumentation off until the warm-up is done), sends
`--calls` 2025-era echo calls on one session at `--connections` concurrent calls, and reads the
instructions counted for exactly those calls with `callgrind_control`. System calls and context
switches are not in the count.

    .venv/bin/python -m bench.gateway_cost                          # gateway and child, c = 1 and 16
    .venv/bin/python -m bench.gateway_cost --process child --connections 16 --calls 2000
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import orjson

from bench import httpclient
from bench.servers import _UNLIMITED, HOST, STDIO_ECHO, free_port

TOOL = "up__echo"


async def _drive(port: int, calls: int, connections: int, session: str | None) -> str:
    """``calls`` echo calls spread over ``connections`` keep-alive connections; the session id."""
    conns = [httpclient.Connection(HOST, port, 600.0) for _ in range(connections)]
    try:
        if session is None:
            session = await httpclient.open_session(conns[0])
        headers = {**httpclient.BASE_HEADERS, "MCP-Protocol-Version": "2025-11-25", "Mcp-Session-Id": session}
        ids = itertools.count(1)
        left = [calls]

        async def worker(conn: httpclient.Connection) -> None:
            while left[0] > 0:
                left[0] -= 1
                params = {"name": TOOL, "arguments": {"text": "hello"}}
                body = orjson.dumps(
                    {"jsonrpc": "2.0", "id": next(ids), "method": "tools/call", "params": params}
                )
                answer = await conn.request("POST", "/mcp", headers, body)
                if answer.status != 200 or b'"isError":false' not in answer.body:
                    raise httpclient.HttpError(f"unexpected answer: {answer.status} {answer.body[:200]!r}")

        await asyncio.gather(*(worker(conn) for conn in conns))
        return session
    finally:
        for conn in conns:
            await conn.close()


def _instructions(path_prefix: str) -> int:
    dumps = sorted(Path(path_prefix).parent.glob(Path(path_prefix).name + "*"), key=os.path.getmtime)
    for line in dumps[-1].read_text(errors="replace").splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {dumps[-1]}")


def measure(process: str, calls: int, connections: int, warmup: int, work: Path) -> float:
    """Instructions per call of ``process`` ("gateway" or "child")."""
    out = str(work / f"callgrind.{process}.{connections}")
    valgrind = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}.%p"]
    command, *args = STDIO_ECHO[len(_UNLIMITED) + 1 :]
    if process == "child":
        command, args = valgrind[0], [*valgrind[1:], command, *args]
    config = work / f"gateway-{process}-{connections}.toml"
    listed = ", ".join(f'"{a}"' for a in args)
    env_table = ", ".join(f'{k} = "{v}"' for k, v in _UNLIMITED.items())
    config.write_text(
        f'[[upstreams]]\nname = "up"\ncommand = "{command}"\nargs = [{listed}]\n'
        f"start_timeout = 300\nenv = {{ {env_table} }}\n"
    )
    port = free_port()
    gateway = [
        str(Path(sys.executable).parent / "mcpserve"),
        *("gateway", "--config", str(config), "--auth", "none", "--host", HOST, "--port", str(port)),
    ]
    if process == "gateway":
        gateway = [*valgrind, sys.executable, *gateway]
    env = {**os.environ, **_UNLIMITED, "BENCH_ECHO": os.environ.get("BENCH_ECHO", "sync")}
    with (work / f"{process}-{connections}.log").open("wb") as log:
        server = subprocess.Popen(
            gateway, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 600
        while True:
            try:
                with urllib.request.urlopen(f"http://{HOST}:{port}/ready", timeout=5) as response:
                    if response.status == 200 and b"degraded" not in response.read():
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the gateway did not become ready; see {log.name}")
            time.sleep(0.5)
        session = asyncio.run(_drive(port, warmup, connections, None))
        pid = server.pid
        if process == "child":
            found = subprocess.run(
                ["pgrep", "-P", str(server.pid)], capture_output=True, text=True, check=True
            )
            pid = int(found.stdout.split()[0])
        subprocess.run(["callgrind_control", "-i", "on", str(pid)], check=True, capture_output=True)
        asyncio.run(_drive(port, calls, connections, session))
        subprocess.run(["callgrind_control", "-d", str(pid)], check=True, capture_output=True)
        return _instructions(f"{out}.{pid}") / calls
    finally:
        os.killpg(server.pid, 15)
        server.wait(60)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--process", choices=["gateway", "child", "both"], default="both")
    parser.add_argument("--connections", default="1,16")
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=300)
    args = parser.parse_args(argv)
    processes = ["gateway", "child"] if args.process == "both" else [args.process]
    with tempfile.TemporaryDirectory(prefix="gateway-cost-") as tmp:
        for connections in (int(c) for c in args.connections.split(",")):
            for process in processes:
                count = measure(process, args.calls, connections, args.warmup, Path(tmp))
                print(f"{process:8} c={connections:<3} {count:>10,.0f} instructions per call", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
