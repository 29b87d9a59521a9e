"""How a stdio child's output becomes JSON-RPC lines: split across reads, blank lines skipped,
and an over-long message stops the stream for good (it cannot be resynchronised)."""

from __future__ import annotations

import pytest

from mcpserve.gateway import stdio
from mcpserve.gateway.stdio import _Lines


def _lines() -> tuple[_Lines, list[bytes]]:
    seen: list[bytes] = []
    return _Lines(seen.append), seen


def test_lines_are_delivered_whole_however_the_reads_split_them() -> None:
    lines, seen = _lines()
    for chunk in (b'{"a"', b":1}\n\n  \n", b'{"b":2}\n{"c"', b":3}\n"):
        assert lines.feed(chunk)
    assert seen == [b'{"a":1}', b'{"b":2}', b'{"c":3}']


def test_an_unfinished_line_waits_for_its_newline() -> None:
    lines, seen = _lines()
    assert lines.feed(b'{"a":1}\n{"b"')
    assert seen == [b'{"a":1}']
    assert lines.feed(b":2}\n")
    assert seen == [b'{"a":1}', b'{"b":2}']


@pytest.mark.parametrize("chunks", [[b"x" * 11], [b"x" * 6, b"x" * 6], [b"x" * 11 + b"\nok\n"]])
def test_a_line_over_the_limit_stops_the_stream(monkeypatch: pytest.MonkeyPatch, chunks: list[bytes]) -> None:
    monkeypatch.setattr(stdio, "MAX_LINE_BYTES", 10)
    lines, seen = _lines()
    assert not all([lines.feed(chunk) for chunk in chunks])
    assert lines.over_limit
    assert not lines.feed(b'{"late":1}\n')
    assert seen == []
