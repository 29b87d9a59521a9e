"""Requests that are malformed at the HTTP level, sent byte for byte to a real server process:
repeated single-valued headers, empty and oversized bodies."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from tests.support.asgi import META
from tests.transports.http.test_connection_limits import Server, answer_or_closed, connect, serving

pytestmark = pytest.mark.slow

BODY = orjson.dumps(
    {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": "x"}, "_meta": META},
    }
)
HEAD = (
    b"POST /mcp HTTP/1.1\r\ncontent-type: application/json\r\n"
    b"accept: application/json, text/event-stream\r\nmcp-method: tools/call\r\nmcp-name: echo\r\n"
)


def exchange(server: Server, head: bytes, body: bytes = BODY) -> bytes:
    """Send one request on its own connection; everything the server answers until it closes."""
    with connect(server.port) as sock:
        sock.sendall(head + b"connection: close\r\ncontent-length: %d\r\n\r\n" % len(body) + body)
        return answer_or_closed(sock)


def status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


REPEATS = {
    "host first wrong": b"host: evil.example\r\nhost: 127.0.0.1\r\nmcp-protocol-version: 2026-07-28\r\n",
    "host last wrong": b"host: 127.0.0.1\r\nhost: evil.example\r\nmcp-protocol-version: 2026-07-28\r\n",
    "origin": (
        b"host: 127.0.0.1\r\norigin: https://evil.example\r\norigin: http://127.0.0.1\r\n"
        b"mcp-protocol-version: 2026-07-28\r\n"
    ),
    "authorization": (
        b"host: 127.0.0.1\r\nauthorization: Bearer one-0123456789abcdef\r\n"
        b"authorization: Bearer two-0123456789abcdef\r\nmcp-protocol-version: 2026-07-28\r\n"
    ),
    "session": b"host: 127.0.0.1\r\nmcp-session-id: a\r\nmcp-session-id: b\r\n",
    "version": b"host: 127.0.0.1\r\nmcp-protocol-version: 2026-07-28\r\nmcp-protocol-version: 2025-11-25\r\n",
}


def test_a_repeated_single_valued_header_gets_400_and_other_repeats_pass(tmp_path: Path) -> None:
    with serving(tmp_path) as server:
        answers = {name: exchange(server, HEAD + headers) for name, headers in REPEATS.items()}
        note_twice = exchange(
            server,
            HEAD + b"host: 127.0.0.1\r\nx-note: a\r\nx-note: b\r\nmcp-protocol-version: 2026-07-28\r\n",
        )
        once = exchange(server, HEAD + b"host: 127.0.0.1\r\nmcp-protocol-version: 2026-07-28\r\n")
    for name, answer in answers.items():
        assert status(answer) == 400, (name, answer[:200])
        error = orjson.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]
        assert error["code"] == -32600 and error["message"].startswith("Duplicate "), name
    assert b"Duplicate host header" in answers["host first wrong"]
    assert status(note_twice) == 200 and status(once) == 200


def test_an_empty_chunked_body_is_a_400_not_a_413(tmp_path: Path) -> None:
    headers = b"host: 127.0.0.1\r\nmcp-protocol-version: 2026-07-28\r\ntransfer-encoding: chunked\r\n"
    with serving(tmp_path) as server, connect(server.port) as sock:
        sock.sendall(HEAD + headers + b"connection: close\r\n\r\n0\r\n\r\n")
        answer = answer_or_closed(sock)
    assert status(answer) == 400
    assert orjson.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]["code"] == -32700


def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_sent(tmp_path: Path) -> None:
    limit = 64 * 1024
    headers = b"host: 127.0.0.1\r\nmcp-protocol-version: 2026-07-28\r\ncontent-length: %d\r\n\r\n" % (
        limit + 1
    )
    with serving(tmp_path, MCPSERVE_MAX_BODY_BYTES=str(limit)) as server, connect(server.port) as sock:
        sock.sendall(HEAD + headers)  # and not one byte of the body
        started = time.monotonic()
        answer = answer_or_closed(sock)  # to the end: the server closes the connection
        elapsed = time.monotonic() - started
        over_chunked = (
            b"host: 127.0.0.1\r\nmcp-protocol-version: 2026-07-28\r\ntransfer-encoding: chunked\r\n"
        )
        with connect(server.port) as chunked:
            chunked.sendall(
                HEAD + over_chunked + b"\r\n" + b"%x\r\n" % (limit + 1) + b"a" * (limit + 1) + b"\r\n"
            )
            chunked_answer = answer_or_closed(chunked)
    assert status(answer) == 413
    assert b"connection: close" in answer.lower()
    assert elapsed < 5  # not waiting for a body that never comes (the body timeout is 30 s)
    assert status(chunked_answer) == 413  # a body without a declared length: refused once past it
    assert b"connection: close" in chunked_answer.lower()  # and the rest of it never read
