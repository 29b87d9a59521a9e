"""One mcpserve replica as a real child process on a free loopback port, for tests behind a proxy.

It serves ``app`` without authentication or rate limits, drains on SIGTERM after a short
``MCPSERVE_DRAIN_DELAY`` (so the proxy sees readiness fail first), and writes one log file per
start under ``log_dir``.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from tests.support.processes import child_env, mcpserve_argv
from tests.support.servers import free_port, wait_healthy


class Replica:
    def __init__(self, app: Path, log_dir: Path, name: str, **env: str) -> None:
        self.app, self.log_dir, self.name, self.env = app, log_dir, name, env
        self.port, self.starts = free_port(), 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def start(self) -> None:
        self.starts += 1
        log = (self.log_dir / f"replica-{self.name}-{self.starts}.log").open("wb")
        argv = mcpserve_argv("serve", str(self.app), "--host", "127.0.0.1", "--port", str(self.port))
        env = child_env(
            MCPSERVE_AUTH="none",
            MCPSERVE_RATE_LIMIT_PER_MINUTE="0",
            MCPSERVE_RATE_LIMIT_PER_HOUR="0",
            MCPSERVE_DRAIN_DELAY="0.3",
            **self.env,
        )
        self.process = subprocess.Popen(
            argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log
        )
        log.close()
        wait_healthy(f"http://127.0.0.1:{self.port}/health", self.process)

    def stop(self) -> int:
        """SIGTERM: the replica drains and exits."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def logs(self) -> list[bytes]:
        return [path.read_bytes() for path in sorted(self.log_dir.glob(f"replica-{self.name}-*.log"))]
