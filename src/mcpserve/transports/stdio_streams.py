"""stdin and stdout as the stdio transport uses them: read in chunks, written without blocking.

A pipe or a socket (how an MCP client starts a server) is served on the event loop: no thread
hand-off per chunk read or reply written, and every reply finished in one loop iteration leaves
in one write. A terminal or a regular file cannot be polled (and a terminal's non-blocking flag
would be shared with the shell), so those are read and written in a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import IO, BinaryIO, Protocol, cast

import anyio.to_thread

__all__ = ["Output", "open_input", "open_output"]

logger = logging.getLogger("mcpserve.stdio")
# Replies buffered for a client that does not read them: past this, requests wait to answer.
_HIGH_WATER = 1024 * 1024


class Output(Protocol):
    """Where replies go: ``write`` never blocks; ``drain`` waits while the client is behind."""

    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...


def _polled_fd(file: BinaryIO) -> int | None:
    """The descriptor of ``file`` when the event loop can serve it (a pipe or a socket)."""
    try:
        fd = file.fileno()
        mode = os.fstat(fd).st_mode
    except (OSError, ValueError):  # io.UnsupportedOperation is both
        return None
    return fd if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) else None


@contextlib.asynccontextmanager
async def _own_copy(fd: int, mode: str) -> AsyncIterator[IO[bytes]]:
    """A duplicate of ``fd`` for an asyncio transport to own and close, and the descriptor's
    blocking flag restored afterwards (it belongs to the open file, shared with the original)."""
    blocking = os.get_blocking(fd)
    copy = os.fdopen(os.dup(fd), mode, buffering=0)
    try:
        yield copy
    finally:
        with contextlib.suppress(OSError):
            os.set_blocking(fd, blocking)


@contextlib.asynccontextmanager
async def open_input(stdin: BinaryIO) -> AsyncIterator[Callable[[int], Awaitable[bytes]]]:
    """``read(n)``: up to ``n`` bytes as soon as any are there, ``b""`` at the end of input."""
    fd = _polled_fd(stdin)
    if fd is None:
        blocking_read = getattr(stdin, "read1", stdin.read)
        yield lambda size: anyio.to_thread.run_sync(blocking_read, size)
        return
    loop = asyncio.get_running_loop()
    async with _own_copy(fd, "rb") as pipe:
        reader = asyncio.StreamReader(limit=_HIGH_WATER, loop=loop)
        transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
        try:
            yield reader.read
        finally:
            transport.close()


@contextlib.asynccontextmanager
async def open_output(stdout: BinaryIO) -> AsyncIterator[Output]:
    """An :class:`Output` on ``stdout``; everything written is flushed before this exits."""
    fd = _polled_fd(stdout)
    if fd is None:
        threaded = _ThreadOutput(stdout)
        try:
            yield threaded
        finally:
            await threaded.flush()
        return
    loop = asyncio.get_running_loop()
    async with _own_copy(fd, "wb") as pipe:
        _, output = await loop.connect_write_pipe(lambda: _PipeOutput(loop), pipe)
        try:
            yield output
        finally:
            await output.close()


class _PipeOutput(asyncio.Protocol):
    """Replies on a non-blocking pipe: batched per loop iteration, with the transport's flow control."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._transport: asyncio.WriteTransport | None = None
        self._batch: list[bytes] = []
        self._paused = False
        self._resumed: asyncio.Future[None] | None = None
        self._lost: asyncio.Future[None] = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.WriteTransport, transport)  # uvloop's is not a subclass
        self._transport.set_write_buffer_limits(high=_HIGH_WATER)

    def write(self, data: bytes) -> None:
        if not self._batch:
            self._loop.call_soon(self._flush)
        self._batch.append(data)

    def _flush(self) -> None:
        data = b"".join(self._batch)
        self._batch.clear()
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    async def drain(self) -> None:
        if self._paused and not self._lost.done():
            if self._resumed is None or self._resumed.done():
                self._resumed = self._loop.create_future()
            await asyncio.wait([self._resumed, self._lost], return_when=asyncio.FIRST_COMPLETED)

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        if self._resumed is not None and not self._resumed.done():
            self._resumed.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            # The client closed our stdout but may still be writing: later replies have no reader.
            logger.warning("stdout closed by the client (%s); replies from now on are dropped", exc)
        if not self._lost.done():
            self._lost.set_result(None)

    async def close(self) -> None:
        if self._batch:
            self._flush()
        if self._transport is not None:
            self._transport.close()  # after what is buffered has been written
        await self._lost


class _ThreadOutput:
    """Replies written by a worker thread in arrival order, one write per batch that piled up."""

    def __init__(self, stdout: BinaryIO) -> None:
        self._stdout = stdout
        self._batch: list[bytes] = []
        self._size = 0
        self._writer: asyncio.Task[None] | None = None

    def write(self, data: bytes) -> None:
        self._batch.append(data)
        self._size += len(data)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_all())

    async def _write_all(self) -> None:
        while self._batch:
            data = b"".join(self._batch)
            self._batch.clear()
            self._size = 0
            await anyio.to_thread.run_sync(self._write_now, data)

    def _write_now(self, data: bytes) -> None:
        self._stdout.write(data)
        self._stdout.flush()

    async def drain(self) -> None:
        if self._size > _HIGH_WATER and self._writer is not None:
            await asyncio.shield(self._writer)

    async def flush(self) -> None:
        if self._writer is not None:
            await self._writer
