"""Start real mcpserve processes on free loopback ports for integration tests."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.support.logcheck import check_log_lines
from tests.support.processes import child_env, mcpserve_argv, stop_process

ROOT = Path(__file__).resolve().parents[2]


def tools_dir(environ: Mapping[str, str]) -> Path:
    """Where scripts/node-tools.sh installs Node and the JS clients (it honours the same variable)."""
    return Path(environ.get("MCPSERVE_TOOLS_DIR") or ROOT / ".tools")


TOOLS = tools_dir(os.environ)
# Set by `make test` (and implied by CI): a missing Node tool fails its test instead of skipping it.
REQUIRE_TOOLS = os.environ.get("MCPSERVE_TEST_REQUIRE_TOOLS") == "1" or bool(os.environ.get("CI"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(url: str, process: subprocess.Popen[bytes], deadline: float = 20.0) -> None:
    """Poll /health until it answers; fail fast if the process dies."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early with code {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.05)  # polling interval while the process starts, not synchronisation
    raise TimeoutError(f"{url} did not answer within {deadline} s")


@contextlib.contextmanager
def running_server(
    *args: str,
    env: dict[str, str] | None = None,
    auth: str | None = "none",
    port: int | None = None,
    lines: list[dict[str, Any]] | None = None,
    measured: bool = False,
    command_name: str = "serve",
) -> Iterator[str]:
    """Run ``mcpserve serve ARGS`` over HTTP; yields the MCP URL and stops the process after.

    ``command_name`` runs another serving command (``gateway``).

    ``auth`` becomes ``--auth`` (pass None to leave authentication to ``env``). The server's log
    (stderr, to a file so it can never fill a pipe) is checked line by line afterwards, and its
    lines appended to ``lines`` when given. ``measured``: the child runs under coverage when the
    test run does, in an environment without the developer's mcpserve settings.
    """
    port = port or free_port()
    flags = ["--auth", auth] if auth is not None else []
    serve = [command_name, *args, *flags, "--host", "127.0.0.1", "--port", str(port)]
    command = mcpserve_argv(*serve) if measured else [sys.executable, "-m", "mcpserve", *serve]
    environment = child_env(**(env or {})) if measured else {**os.environ, **(env or {})}
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stderr=log)
        try:
            wait_healthy(f"http://127.0.0.1:{port}/health", process)
            yield f"http://127.0.0.1:{port}/mcp"
        finally:
            stop_process(process)
        log.seek(0)
        parsed = check_log_lines(log.read())
        if lines is not None:
            lines.extend(parsed)


def node_tool(name: str) -> Path:
    """A launcher installed by scripts/node-tools.sh (make test runs it first)."""
    return TOOLS / "bin" / name


def require_tool(path: Path) -> Path:
    """``path`` if it exists. Missing: a failure under ``make test`` or CI, else a skip naming the fix."""
    if not path.exists():
        reason = f"{path} missing: scripts/node-tools.sh (make tools) installs it"
        if REQUIRE_TOOLS:
            pytest.fail(reason)
        pytest.skip(reason)
    return path


def node_launcher(name: str) -> str:
    """A launcher from .tools/bin (``make tools``), as :func:`require_tool` finds it."""
    return str(require_tool(node_tool(name)))
