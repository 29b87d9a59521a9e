"""Log lines leave in batches: one write per event loop iteration, at once from other threads."""

from __future__ import annotations

import asyncio
import io
import os
import sys
import threading
from typing import Any, cast

import pytest

from mcpserve.observability import logs
from mcpserve.observability.logs import configure_logging, write_event


class CountingRaw(io.RawIOBase):
    """A raw stream that records each write: one entry per system call it would have made."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.writes.append(bytes(data))
        return len(data)


@pytest.fixture
def raw() -> CountingRaw:
    raw = CountingRaw()
    configure_logging("info", io.BufferedWriter(cast(Any, raw)))  # a RawIOBase, as FileIO is
    return raw


@pytest.mark.anyio
async def test_lines_of_one_loop_iteration_leave_in_one_write(raw: CountingRaw) -> None:
    for n in range(3):
        write_event("info", "test", "line", {"n": n})
    assert raw.writes == []  # buffered until this iteration's callbacks have run
    await asyncio.sleep(0)  # one loop iteration: the flush scheduled by the first line runs first
    assert len(raw.writes) == 1
    assert raw.writes[0].count(b"\n") == 3


def test_a_line_written_off_the_loop_is_written_at_once(raw: CountingRaw) -> None:
    thread = threading.Thread(target=write_event, args=("info", "test", "from a thread", {}))
    thread.start()
    thread.join()
    assert len(raw.writes) == 1 and b"from a thread" in raw.writes[0]


def test_stderr_gets_a_buffer_of_its_own_and_keeps_its_descriptor(monkeypatch: pytest.MonkeyPatch) -> None:
    read_end, write_end = os.pipe()
    fake_stderr = io.TextIOWrapper(io.FileIO(write_end, "wb"), write_through=True)  # unbuffered, as Python's
    monkeypatch.setattr(sys, "stderr", fake_stderr)
    monkeypatch.setattr(logs, "_stderr_writer", None)
    try:
        configure_logging("info")
        write_event("info", "test", "to stderr", {})
        assert os.read(read_end, 4096).count(b"to stderr") == 1  # off the loop: flushed at once
        writer = logs._stderr_writer
        assert isinstance(writer, io.BufferedWriter)
        writer.close()  # closing our buffer must leave stderr's descriptor open
        assert os.write(write_end, b"still open") == len(b"still open")
    finally:
        configure_logging("info", io.BytesIO())
        fake_stderr.close()
        os.close(read_end)
