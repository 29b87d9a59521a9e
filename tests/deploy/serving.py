"""Start ``mcpserve serve`` as a child process (HTTP or HTTPS) for deployment tests."""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support.logcheck import check_log_lines
from tests.support.processes import child_env, mcpserve_argv


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    base: str
    lines: list[dict[str, Any]] = field(default_factory=list)  # the log, once stopped

    @property
    def url(self) -> str:
        return f"{self.base}/mcp"


def wait_live(base: str, process: subprocess.Popen[bytes], deadline: float = 20.0, **client: Any) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early with code {process.returncode}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{base}/health", timeout=1, **client).status_code == 200:
                return
        time.sleep(0.05)  # polling interval while the process starts, not synchronisation
    raise TimeoutError(f"{base}/health did not answer within {deadline} s")


@contextlib.contextmanager
def serving(
    port: int,
    *args: str,
    env: Mapping[str, str],
    scheme: str = "http",
    probe: dict[str, Any] | None = None,
) -> Iterator[Served]:
    """Run ``mcpserve serve ARGS`` with ``env`` (settings scrubbed from ours) until the block ends;
    then SIGTERM, expect exit 0, and check every log line (``Served.lines``)."""
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            mcpserve_argv("serve", *args), env=child_env(**env), stdout=subprocess.DEVNULL, stderr=log
        )
        served = Served(process, f"{scheme}://127.0.0.1:{port}")
        try:
            wait_live(served.base, process, **(probe or {}))
            yield served
        finally:
            process.terminate()
            try:
                code = process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                raise
            log.seek(0)
            served.lines = check_log_lines(log.read())
        assert code == 0, served.lines[-5:]
