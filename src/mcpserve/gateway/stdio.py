"""One stdio upstream process: its own process group, stdout as JSON-RPC, stderr as log lines.

The child is the leader of a new session (``start_new_session``), so stopping it signals the
whole group and reaches grandchildren (``npx`` → ``node``, ``uv`` → ``python``) that would
otherwise be orphaned.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable

from mcpserve.gateway.config import UpstreamSpec
from mcpserve.observability.logs import get_logger

__all__ = ["ChildProcess", "MAX_LINE_BYTES"]

logger = get_logger("mcpserve.gateway")
MAX_LINE_BYTES = 16 * 1024 * 1024  # one JSON-RPC message; asyncio's default (64 KiB) is far too small
_MAX_LOGGED_LINE = 2000
_STOP_GRACE = 2.0  # seconds after closing stdin, then after SIGTERM


class ChildProcess:
    """A started child; ``on_line`` gets each stdout line, ``on_exit`` its exit code once."""

    def __init__(self, spec: UpstreamSpec, process: asyncio.subprocess.Process) -> None:
        self.spec = spec
        self.process = process
        self.pid = process.pid
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    async def spawn(
        cls,
        spec: UpstreamSpec,
        env: dict[str, str],
        on_line: Callable[[bytes], None],
        on_exit: Callable[[int], None],
    ) -> ChildProcess:
        assert spec.command is not None
        process = await asyncio.create_subprocess_exec(
            spec.command,
            *spec.args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd=spec.cwd,
            start_new_session=True,
            limit=MAX_LINE_BYTES,
        )
        child = cls(spec, process)
        child._tasks = [
            asyncio.create_task(child._read_stdout(on_line, on_exit)),
            asyncio.create_task(child._read_stderr()),
        ]
        logger.info("upstream started", upstream=spec.name, pid=process.pid)
        return child

    def send(self, data: bytes) -> None:
        stdin = self.process.stdin
        if stdin is not None and not stdin.is_closing():
            stdin.write(data + b"\n")

    async def _read_stdout(self, on_line: Callable[[bytes], None], on_exit: Callable[[int], None]) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        try:
            while True:
                try:
                    line = await stdout.readline()
                except ValueError:  # longer than MAX_LINE_BYTES: the stream cannot be resynchronised
                    logger.error("upstream wrote a message over the size limit", upstream=self.spec.name)
                    self.kill()
                    break
                if not line:
                    break
                if line.strip():
                    on_line(line)
        finally:
            code = await self.process.wait()
            # The exit is what ends calls in flight, so it must not wait for the stderr pump.
            on_exit(code)

    async def _read_stderr(self) -> None:
        stderr = self.process.stderr
        assert stderr is not None
        with contextlib.suppress(ValueError):
            async for raw in stderr:
                text = raw.decode(errors="replace").rstrip()
                if text:
                    logger.info(
                        "upstream stderr", upstream=self.spec.name, pid=self.pid, line=text[:_MAX_LOGGED_LINE]
                    )

    def kill(self) -> None:
        """SIGKILL the whole process group at once."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)

    async def stop(self) -> None:
        """Close stdin (the MCP way to ask a stdio server to exit), then SIGTERM, then SIGKILL the group."""
        if self.process.returncode is None:
            if self.process.stdin is not None:
                self.process.stdin.close()
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    await asyncio.wait_for(asyncio.shield(self.process.wait()), _STOP_GRACE)
                    break
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(self.pid, sig)
            await self.process.wait()
        # Grandchildren may outlive the leader: the group still goes.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
