"""One stdio upstream process: its own process group, stdout as JSON-RPC, stderr as log lines.

The child is the leader of a new session (``start_new_session``), so stopping it signals the
whole group and reaches grandchildren (``npx`` → ``node``, ``uv`` → ``python``) that would
otherwise be orphaned.

Its pipes are served by a protocol on the event loop: each stdout line goes to ``on_line`` as it
arrives (no reader task to wake per line), and the requests sent in one loop iteration reach the
child's stdin in one write.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from collections.abc import Callable
from typing import cast

from mcpserve.gateway.config import UpstreamSpec
from mcpserve.observability.logs import get_logger

__all__ = ["ChildProcess", "MAX_LINE_BYTES"]

logger = get_logger("mcpserve.gateway")
MAX_LINE_BYTES = 16 * 1024 * 1024  # one JSON-RPC message; asyncio's default (64 KiB) is far too small
_MAX_LOGGED_LINE = 2000
_STOP_GRACE = 2.0  # seconds after closing stdin, then after SIGTERM


class _Lines:
    """Splits a byte stream into lines; a line over ``MAX_LINE_BYTES`` stops it for good."""

    __slots__ = ("_buffer", "_on_line", "over_limit")

    def __init__(self, on_line: Callable[[bytes], None]) -> None:
        self._on_line = on_line
        self._buffer = b""
        self.over_limit = False

    def feed(self, data: bytes) -> bool:
        """Deliver the complete lines in ``data``; False when a line is over the limit."""
        if self.over_limit:
            return False
        buffer = self._buffer + data if self._buffer else data
        if b"\n" in data:
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                if len(line) > MAX_LINE_BYTES:
                    self.over_limit = True
                    return False
                if line.strip():
                    self._on_line(line)
        self._buffer = buffer
        if len(buffer) > MAX_LINE_BYTES:
            self.over_limit = True
            return False
        return True


class _ChildProtocol(asyncio.SubprocessProtocol):
    def __init__(self, spec: UpstreamSpec, on_line: Callable[[bytes], None]) -> None:
        loop = asyncio.get_running_loop()
        self.spec = spec
        self.pid: int | None = None
        self.stdout = _Lines(on_line)
        self.stderr = _Lines(self._log_stderr)
        self.exited: asyncio.Future[int] = loop.create_future()  # the exit code
        self.finished: asyncio.Future[int] = loop.create_future()  # exited and stdout read to its end
        self._reading = {1, 2}  # stdout and stderr, until each reaches its end
        self._transport: asyncio.SubprocessTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.SubprocessTransport, transport)
        self.pid = self._transport.get_pid()

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        if fd == 1:
            if not self.stdout.over_limit and not self.stdout.feed(data):
                # The stream cannot be resynchronised after a message it could not hold.
                logger.error("upstream wrote a message over the size limit", upstream=self.spec.name)
                _kill_group(self.pid)
        elif fd == 2:
            self.stderr.feed(data)

    def _log_stderr(self, raw: bytes) -> None:
        text = raw.decode(errors="replace").rstrip()
        if text:
            logger.info(
                "upstream stderr", upstream=self.spec.name, pid=self.pid, line=text[:_MAX_LOGGED_LINE]
            )

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        self._reading.discard(fd)
        self._maybe_finished()

    def process_exited(self) -> None:
        assert self._transport is not None
        code = self._transport.get_returncode()
        if not self.exited.done():
            self.exited.set_result(code if code is not None else -1)
        self._maybe_finished()

    def _maybe_finished(self) -> None:
        if not self.exited.done():
            return
        # The exit is what ends calls in flight, after every line the child wrote has been read.
        if 1 not in self._reading and not self.finished.done():
            self.finished.set_result(self.exited.result())
        if not self._reading and self._transport is not None:
            self._transport.close()  # nothing more can come: release it (a crash has no stop())
            self._transport = None


def _kill_group(pid: int | None, sig: int = signal.SIGKILL) -> None:
    if pid is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)


class ChildProcess:
    """A started child; ``on_line`` gets each stdout line, ``on_exit`` its exit code once."""

    def __init__(
        self, spec: UpstreamSpec, transport: asyncio.SubprocessTransport, protocol: _ChildProtocol
    ) -> None:
        self.spec = spec
        self.pid = transport.get_pid()
        self._transport = transport
        self._protocol = protocol
        self._stdin = cast(asyncio.WriteTransport | None, transport.get_pipe_transport(0))
        self._batch: list[bytes] = []
        self._loop = asyncio.get_running_loop()

    @classmethod
    async def spawn(
        cls,
        spec: UpstreamSpec,
        env: dict[str, str],
        on_line: Callable[[bytes], None],
        on_exit: Callable[[int], None],
    ) -> ChildProcess:
        assert spec.command is not None
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.subprocess_exec(
            lambda: _ChildProtocol(spec, on_line),
            spec.command,
            *spec.args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=spec.cwd,
            start_new_session=True,
        )
        protocol.finished.add_done_callback(lambda done: on_exit(done.result()))
        logger.info("upstream started", upstream=spec.name, pid=transport.get_pid())
        return cls(spec, transport, protocol)

    def send(self, data: bytes) -> None:
        """Queue one message; everything queued in this loop iteration leaves in one write."""
        if not self._batch:
            self._loop.call_soon(self._flush)
        self._batch += (data, b"\n")

    def _flush(self) -> None:
        data = b"".join(self._batch)
        self._batch.clear()
        if self._stdin is not None and not self._stdin.is_closing():
            self._stdin.write(data)

    def kill(self) -> None:
        """SIGKILL the whole process group at once."""
        _kill_group(self.pid)

    async def stop(self) -> None:
        """Close stdin (the MCP way to ask a stdio server to exit), then SIGTERM, then SIGKILL the group.

        Cancelled while waiting, it kills the group at once and still reaps the child.
        """
        exited = self._protocol.exited
        try:
            if not exited.done():
                if self._stdin is not None:
                    if self._batch:
                        self._flush()
                    self._stdin.close()
                for sig in (signal.SIGTERM, signal.SIGKILL):
                    try:
                        await asyncio.wait_for(asyncio.shield(exited), _STOP_GRACE)
                        break
                    except TimeoutError:
                        _kill_group(self.pid, sig)
                await exited
        except asyncio.CancelledError:
            _kill_group(self.pid)
            await exited  # a SIGKILLed process exits at once
            raise
        finally:
            # Grandchildren may outlive the leader: the group still goes.
            _kill_group(self.pid)
            self._transport.close()
