"""The servers under test: how to start them (pinned to one CPU), wait for them, measure and stop them."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
HOST = "127.0.0.1"
PATH = "/mcp"


@dataclass(frozen=True)
class ServerSpec:
    """One server configuration. `name` is the column it reports under; `eras` what it is measured on."""

    name: str
    config: str
    command: Callable[[int], list[str]]
    eras: frozenset[str]
    env: dict[str, str] = field(default_factory=dict)  # added to the inherited environment
    redis: bool = False  # needs the bench's private Redis (ServerPool.redis_url)
    tool: str = "echo"  # the echo tool's name as this server serves it
    # Polled after the port opens until it answers 200 without "degraded" (a gateway lists its
    # upstreams after it starts listening).
    ready_path: str | None = None


def _bin(name: str) -> str:
    """A console script of the running interpreter's environment (the project's .venv)."""
    return str(Path(sys.executable).parent / name)


def mcpserve_command(app: str) -> Callable[[int], list[str]]:
    """``mcpserve serve APP`` over HTTP without authentication, on the port it is given."""
    return lambda port: [
        _bin("mcpserve"),
        "serve",
        app,
        "--transport",
        "http",
        "--auth",
        "none",
        "--host",
        HOST,
        "--port",
        str(port),
    ]


def _py(*args: str) -> Callable[[int], list[str]]:
    return lambda port: [sys.executable, *args, "--host", HOST, "--port", str(port)]


_mcpserve = mcpserve_command(str(BENCH_DIR / "apps" / "echo.py"))


def _baseline(port: int) -> list[str]:
    """mcpserve as another checkout has it (``--baseline DIR``, run from that checkout's own .venv),
    so a structural change is measured against the code before it in the same run."""
    root = Path(os.environ["BENCH_BASELINE_DIR"])
    return [
        str(root / ".venv" / "bin" / "mcpserve"),
        "serve",
        str(root / "bench" / "apps" / "echo.py"),
        *_mcpserve(port)[3:],  # the same flags
    ]


# The benchmark measures serving, not throttling: the default 60 calls/min would refuse it.
_UNLIMITED = {"MCPSERVE_RATE_LIMIT_PER_MINUTE": "0", "MCPSERVE_RATE_LIMIT_PER_HOUR": "0"}
# Every session the bench opens comes from one address: the per-caller session cap would refuse
# the session phase past its default of 1,000. (Not for --baseline: older code has no such setting.)
_SERVING = {**_UNLIMITED, "MCPSERVE_MAX_SESSIONS_PER_PRINCIPAL": "1000000"}

# Tracing on, roots sampled at the ratio the harness sets (OTEL_TRACES_SAMPLER_ARG).
_TRACED = {
    **_SERVING,
    "MCPSERVE_TRACING": "true",
    "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
    "OTEL_SERVICE_NAME": "mcpserve-bench",
}

# The stdio upstream every gateway serves: the echo app on mcpserve's stdio transport.
STDIO_ECHO = [
    "env",
    *(f"{k}={v}" for k, v in _UNLIMITED.items()),
    sys.executable,
    "-m",
    "mcpserve",
    "serve",
    str(BENCH_DIR / "apps" / "echo.py"),
    "--transport",
    "stdio",
]
TOOLS_BIN = ROOT / ".tools" / "bin"  # make tools: supergateway (npm), mcp-proxy (PyPI)


def _gateway(port: int) -> list[str]:
    """``mcpserve gateway`` with one upstream, ``up``: the stdio echo (limits off in its ``env``)."""
    config = BENCH_DIR / "results" / f"gateway-{port}.toml"  # bench/results/ is git-ignored
    config.parent.mkdir(parents=True, exist_ok=True)
    command, *args = STDIO_ECHO[len(_UNLIMITED) + 1 :]
    listed = ", ".join(f'"{a}"' for a in args)
    env = ", ".join(f'{k} = "{v}"' for k, v in _UNLIMITED.items())
    config.write_text(
        f'[[upstreams]]\nname = "up"\ncommand = "{command}"\nargs = [{listed}]\nenv = {{ {env} }}\n'
    )
    return [_bin("mcpserve"), "gateway", "--config", str(config), "--auth", "none", "--host", HOST]


SERVERS: dict[str, list[ServerSpec]] = {
    "mcpserve": [
        ServerSpec(
            "mcpserve",
            "mcpserve serve bench/apps/echo.py --transport http (both eras on one endpoint)",
            _mcpserve,
            frozenset({"2026", "2025"}),
            env=_SERVING,
        )
    ],
    # The same server again, in a process of its own: what two processes of the same code differ
    # by (memory layout, hash seed), the noise floor of any ratio between two servers.
    "mcpserve-twin": [
        ServerSpec(
            "mcpserve-twin",
            "mcpserve as above, a second process",
            _mcpserve,
            frozenset({"2026", "2025"}),
            env=_SERVING,
        )
    ],
    # The same server with tracing on, sampling a ratio of requests (--trace-ratio) and exporting
    # them over OTLP/HTTP to the harness's sink; the harness sets the sampler argument and the
    # endpoint in the environment it starts servers with (see harness.main).
    "mcpserve-traced": [
        ServerSpec(
            "mcpserve-traced",
            "mcpserve as above, MCPSERVE_TRACING=true, parentbased_traceidratio, OTLP/HTTP to a local sink",
            _mcpserve,
            frozenset({"2026", "2025"}),
            env=_TRACED,
        )
    ],
    # Tracing on with nothing exported (OTEL_TRACES_EXPORTER=none): sampled spans are recorded and
    # dropped, so beside mcpserve-traced it splits tracing's cost into recording and exporting.
    "mcpserve-traced-unexported": [
        ServerSpec(
            "mcpserve-traced-unexported",
            "mcpserve-traced without an exporter (OTEL_TRACES_EXPORTER=none)",
            _mcpserve,
            frozenset({"2026", "2025"}),
            env={**_TRACED, "OTEL_TRACES_EXPORTER": "none"},
        )
    ],
    # The same server with 2025-era sessions, their events and the bus in Redis (MCPSERVE_STATE=redis),
    # as every replica of a scaled-out deployment runs; Redis is the bench's own (bench/redis_server.py).
    "mcpserve-redis": [
        ServerSpec(
            "mcpserve-redis",
            "mcpserve serve bench/apps/echo.py --transport http, MCPSERVE_STATE=redis (private redis-server)",
            _mcpserve,
            frozenset({"2026", "2025"}),
            env={
                **_SERVING,
                "MCPSERVE_STATE": "redis",
                # A fixed, public key: only for this benchmark's throw-away servers.
                "MCPSERVE_REQUEST_STATE_KEYS": "YmVuY2gtb25seS1rZXktbm90LWEtc2VjcmV0LTMyYiE",
            },
            redis=True,
        )
    ],
    "baseline": [
        ServerSpec(
            "baseline",
            "mcpserve serve bench/apps/echo.py from the --baseline checkout (its own .venv)",
            _baseline,
            frozenset({"2026", "2025"}),
            env=_UNLIMITED,
        )
    ],
    "sdk": [
        ServerSpec(
            "sdk",
            "mcp 2.3.0 MCPServer, stateless_http=True, json_response=True",
            _py(str(BENCH_DIR / "apps" / "sdk_echo.py"), "--mode", "stateless"),
            frozenset({"2026"}),
        ),
        ServerSpec(
            "sdk",
            "mcp 2.3.0 MCPServer, stateful sessions, json_response=True",
            _py(str(BENCH_DIR / "apps" / "sdk_echo.py"), "--mode", "stateful"),
            frozenset({"2025"}),
        ),
    ],
    "bare": [
        ServerSpec(
            "bare",
            "bare uvicorn ASGI app + orjson (no MCP machinery)",
            _py(str(BENCH_DIR / "apps" / "bare_echo.py")),
            frozenset({"2026", "2025"}),
        )
    ],
    # The same bare app on the HTTP protocol `mcpserve serve` uses (a response's head and body in
    # one write): mcpserve's figure over this one is what the MCP machinery alone costs.
    "bare-held": [
        ServerSpec(
            "bare-held",
            "bare app on mcpserve's HTTP protocol (writes held to the end of the loop iteration)",
            _py(str(BENCH_DIR / "apps" / "bare_echo.py"), "--http", "held"),
            frozenset({"2026", "2025"}),
        )
    ],
    # The gateway benchmark (python -m bench.gateway): one stdio echo upstream behind each.
    "gateway": [
        ServerSpec(
            "gateway",
            "mcpserve gateway, [[upstreams]] up = the stdio echo (shared child), tool up__echo",
            lambda port: [*_gateway(port), "--port", str(port)],
            frozenset({"2026", "2025"}),
            env=_SERVING,
            tool="up__echo",
            ready_path="/ready",
        )
    ],
    "supergateway": [
        ServerSpec(
            "supergateway",
            "supergateway 4.0.0 --stdio <stdio echo> --outputTransport streamableHttp --stateful",
            lambda port: [
                str(TOOLS_BIN / "supergateway"),
                "--stdio",
                shlex.join(STDIO_ECHO),
                "--outputTransport",
                "streamableHttp",
                "--stateful",
                "--logLevel",
                "none",
                "--port",
                str(port),
            ],
            frozenset({"2025"}),
        )
    ],
    "mcp-proxy": [
        ServerSpec(
            "mcp-proxy",
            "mcp-proxy 0.13.0 --port P <stdio echo> (Streamable HTTP at /mcp, stateful)",
            lambda port: [
                str(TOOLS_BIN / "mcp-proxy"),
                "--host",
                HOST,
                "--port",
                str(port),
                "--",
                *STDIO_ECHO,
            ],
            frozenset({"2025"}),
        )
    ],
}


def state_prefix(spec: ServerSpec, tag: str) -> str:
    """Each server start gets its own Redis keys, so runs never see each other's sessions."""
    return f"bench:{spec.name}:{tag}:"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((HOST, port)) == 0


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def _tree(pid: int) -> list[int]:
    """`pid` and all its descendants."""
    tree = _children()
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        found.append(current)
        stack.extend(tree.get(current, []))
    return found


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time (s) used so far by `pid` and its descendants, all threads counted."""
    total = 0
    for current in _tree(pid):
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / _TICK


def rss_kib(pid: int) -> int:
    """VmRSS (KiB) of `pid` plus all its descendants (a server may fork workers)."""
    total = 0
    for current in _tree(pid):
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


@dataclass
class RunningServer:
    spec: ServerSpec
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}{PATH}"

    def rss_kib(self) -> int:
        return rss_kib(self.process.pid)

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.process.pid)

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        """SIGTERM the server's process group, SIGKILL after 5 s."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        else:
            # The leader is gone; make sure nothing it spawned is left behind.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)


class ServerUnavailable(Exception):
    """The server did not start (missing, crashed, or never listened)."""


@dataclass
class ServerPool:
    """Starts servers pinned to `cpu` and guarantees they are stopped (use as a context manager)."""

    cpu: int
    log_dir: Path
    start_timeout: float
    running: list[RunningServer] = field(default_factory=list)
    redis_url: str | None = None  # the bench's private Redis, for specs that need one

    def __enter__(self) -> ServerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()

    def stop_all(self) -> None:
        while self.running:
            self.running.pop().stop()

    def stop(self, server: RunningServer) -> None:
        server.stop()
        if server in self.running:
            self.running.remove(server)

    def start(self, spec: ServerSpec, tag: str) -> RunningServer:
        port = free_port()
        command = spec.command(port)
        if not Path(command[0]).exists():
            raise ServerUnavailable(f"{command[0]} does not exist")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{spec.name}-{tag}.log"
        env = {**os.environ, **spec.env}
        if spec.redis:
            if self.redis_url is None:
                raise ServerUnavailable("needs the bench's Redis, which did not start")
            env |= {"MCPSERVE_REDIS_URL": self.redis_url, "MCPSERVE_STATE_PREFIX": state_prefix(spec, tag)}
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                ["taskset", "-c", str(self.cpu), *command],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=ROOT,
                env=env,
                start_new_session=True,
            )
        server = RunningServer(spec, port, process, log_path)
        self.running.append(server)
        deadline = time.monotonic() + self.start_timeout
        while not port_open(port):
            if process.poll() is not None:
                self.stop(server)
                raise ServerUnavailable(f"exited with code {process.returncode}: {_tail(log_path)}")
            if time.monotonic() > deadline:
                self.stop(server)
                raise ServerUnavailable(
                    f"port {port} not open after {self.start_timeout:.0f} s: {_tail(log_path)}"
                )
            time.sleep(0.1)
        if spec.ready_path is not None:
            self._wait_ready(server, spec.ready_path, deadline)
        return server

    def _wait_ready(self, server: RunningServer, path: str, deadline: float) -> None:
        url = f"http://{HOST}:{server.port}{path}"
        while True:
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200 and b"degraded" not in response.read():
                    return
            if time.monotonic() > deadline:
                self.stop(server)
                raise ServerUnavailable(
                    f"{path} not ready after {self.start_timeout:.0f} s: {_tail(server.log_path)}"
                )
            time.sleep(0.1)


def _tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text[-lines:])
