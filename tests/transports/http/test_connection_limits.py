"""Hostile clients against a real server process on real loopback sockets: oversized heads,
slow heads and bodies, and a connection flood past the cap. Each is bounded, each is logged once,
and normal requests keep succeeding throughout."""

from __future__ import annotations

import contextlib
import select
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support.asgi import META, MODERN_HEADERS
from tests.support.logcheck import check_log_lines
from tests.support.processes import child_env, mcpserve_argv
from tests.support.servers import free_port, wait_healthy

pytestmark = pytest.mark.slow

APP = Path(__file__).parents[2] / "ops" / "drain_app.py"
MiB = 1024 * 1024


class Server:
    def __init__(self, process: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.process, self.port, self.log = process, port, log

    def memory(self, field: str) -> int:
        """A VmRSS / VmHWM figure of the server process, in bytes."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        raise AssertionError(f"no {field} in /proc status")

    def echo(self, text: str) -> str:
        """A normal 2026-07-28 tool call on a new connection; its result."""
        body = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": text}, "_meta": META},
        }
        headers = {**MODERN_HEADERS, "mcp-method": "tools/call", "mcp-name": "echo"}
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/mcp", orjson.dumps(body), headers, method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
            return str(orjson.loads(response.read())["result"]["structuredContent"]["result"])

    def warnings(self, offence: str) -> list[dict[str, Any]]:
        lines = check_log_lines(self.log.read_bytes())
        return [line for line in lines if line.get("offence") == offence]


@contextlib.contextmanager
def serving(tmp_path: Path, **env: str) -> Iterator[Server]:
    port = free_port()
    log = tmp_path / "server.log"
    argv = mcpserve_argv("serve", str(APP), "--host", "127.0.0.1", "--port", str(port))
    with log.open("wb") as output:
        process = subprocess.Popen(
            argv,
            env=child_env(
                MCPSERVE_AUTH="none",
                MCPSERVE_RATE_LIMIT_PER_MINUTE="0",
                MCPSERVE_RATE_LIMIT_PER_HOUR="0",
                **env,
            ),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=output,
        )
        try:
            wait_healthy(f"http://127.0.0.1:{port}/health", process)
            yield Server(process, port, log)
        finally:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=30)


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def answer_or_closed(sock: socket.socket) -> bytes:
    """What the server sent before closing (b"" if it just closed or reset the connection)."""
    received = b""
    sock.settimeout(10)
    with contextlib.suppress(ConnectionResetError, BrokenPipeError):
        while chunk := sock.recv(65536):
            received += chunk
    return received


def send_huge_head(port: int, outcomes: list[bytes]) -> None:
    with connect(port) as sock:
        sock.sendall(b"POST /mcp HTTP/1.1\r\nhost: 127.0.0.1\r\nx-filler: ")
        chunk = b"a" * MiB
        try:
            for _ in range(64):  # a 64 MiB header that never ends
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading and closed: what the limit is for
        outcomes.append(answer_or_closed(sock))


def test_four_64_mib_heads_cost_under_10_mb_and_get_431_or_a_closed_connection(tmp_path: Path) -> None:
    with serving(tmp_path) as server:
        assert server.echo("warm") == "warm"
        rss, peak = server.memory("VmRSS"), server.memory("VmHWM")
        outcomes: list[bytes] = []
        senders = [threading.Thread(target=send_huge_head, args=(server.port, outcomes)) for _ in range(4)]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join(timeout=60)
        assert len(outcomes) == 4
        grown, peak_grown = server.memory("VmRSS") - rss, server.memory("VmHWM") - peak
        assert server.echo("still serving") == "still serving"
    assert grown < 10 * MiB, f"RSS grew {grown / MiB:.1f} MiB"
    assert peak_grown < 10 * MiB, f"peak RSS grew {peak_grown / MiB:.1f} MiB"
    for outcome in outcomes:
        assert outcome == b"" or outcome.startswith(b"HTTP/1.1 431 "), outcome[:80]
    assert len(server.warnings("header_size")) == 1  # four offences from one address: one line


HEADER_TIMEOUT = 2.0
# uvloop's clock is libuv's, cached per loop iteration at millisecond resolution: a timer can end
# a connection a fraction of a millisecond before the test's own monotonic clock says it is due.
CLOCK_SLACK = 0.01
SLOW_CONNECTIONS = 500


def test_500_slow_heads_are_closed_within_the_header_timeout_while_requests_succeed(tmp_path: Path) -> None:
    with serving(tmp_path, MCPSERVE_HEADER_TIMEOUT=str(HEADER_TIMEOUT)) as server:
        opened: dict[socket.socket, float] = {}
        for _ in range(SLOW_CONNECTIONS):
            connecting = time.monotonic()  # before the server can have started this head's clock
            sock = connect(server.port)
            sock.sendall(b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\nx-slow: ")
            sock.setblocking(False)
            opened[sock] = connecting
        closed_after: list[float] = []
        answers: list[bytes] = []
        served = 0
        deadline = time.monotonic() + HEADER_TIMEOUT + 15
        while opened and time.monotonic() < deadline:
            for sock in list(opened):  # one more byte of the head, as a slow-header client does
                with contextlib.suppress(BlockingIOError, BrokenPipeError, ConnectionResetError):
                    sock.send(b"a")
            readable, _, _ = select.select(list(opened), [], [], 0.25)
            for sock in readable:
                try:
                    data = sock.recv(4096)
                except ConnectionResetError:
                    data = b""
                if data:
                    answers.append(data)
                    continue  # the end of the connection follows
                closed_after.append(time.monotonic() - opened.pop(sock))
                sock.close()
            assert server.echo(f"normal {served}") == f"normal {served}"  # unaffected meanwhile
            served += 1
        for sock in opened:
            sock.close()
    assert not opened, f"{len(opened)} slow connections still open"
    assert len(closed_after) == SLOW_CONNECTIONS
    assert min(closed_after) >= HEADER_TIMEOUT - CLOCK_SLACK  # closed by the timeout, not before
    assert max(closed_after) < HEADER_TIMEOUT + 3, f"slowest closed after {max(closed_after):.1f} s"
    assert all(answer.startswith(b"HTTP/1.1 408 ") for answer in answers)
    assert served > 0
    assert len(server.warnings("head_timeout")) == 1


def test_a_connection_that_never_sends_is_closed_quietly_at_the_header_timeout(tmp_path: Path) -> None:
    with serving(tmp_path, MCPSERVE_HEADER_TIMEOUT="1") as server:
        connecting = time.monotonic()
        with connect(server.port) as sock:
            answer = answer_or_closed(sock)
        idle = time.monotonic() - connecting
    assert answer == b""  # an idle socket is no offence: no 408, no warning
    assert 1 - CLOCK_SLACK <= idle < 5
    assert server.warnings("head_timeout") == []


def test_a_slow_body_is_closed_within_the_body_timeout(tmp_path: Path) -> None:
    with serving(tmp_path, MCPSERVE_BODY_TIMEOUT="1") as server, connect(server.port) as sock:
        head = (
            b"POST /mcp HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            b"accept: application/json, text/event-stream\r\ncontent-length: 1000\r\n\r\n"
        )
        sock.sendall(head + b'{"jsonrpc":')
        started = time.monotonic()
        answer = answer_or_closed(sock)
        elapsed = time.monotonic() - started
        assert server.echo("fine") == "fine"
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408 ")
    assert 0.9 <= elapsed < 5
    assert len(server.warnings("body_timeout")) == 1


CAP = 40
FLOOD = 100


def test_a_flood_past_the_connection_cap_is_refused_and_established_clients_keep_working(
    tmp_path: Path,
) -> None:
    env = {"MCPSERVE_MAX_CONNECTIONS": str(CAP), "MCPSERVE_HEADER_TIMEOUT": "60"}
    with serving(tmp_path, **env) as server:
        established = connect(server.port)
        request = b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n"
        established.sendall(request)
        assert established.recv(4096).startswith(b"HTTP/1.1 200 ")
        flood = [connect(server.port) for _ in range(FLOOD)]
        refused: list[bytes] = []
        waiting = list(flood)
        end = time.monotonic() + 10
        while len(refused) < FLOOD - CAP + 1 and time.monotonic() < end:
            readable, _, _ = select.select(waiting, [], [], 0.25)
            for sock in readable:
                waiting.remove(sock)
                refused.append(answer_or_closed(sock))
        established.sendall(request)  # the established keep-alive connection is untouched
        assert established.recv(4096).startswith(b"HTTP/1.1 200 ")
        for sock in flood:
            sock.close()
        established.close()
        # With the flood gone, new connections are served again.
        end = time.monotonic() + 10
        while True:
            try:
                assert server.echo("after the flood") == "after the flood"
                break
            except OSError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.05)  # polling interval while the server notices the closed sockets
    assert len(refused) == FLOOD - CAP + 1  # the cap counts the established connection too
    assert len(waiting) == CAP - 1  # the accepted flood connections stayed open, unanswered
    for answer in refused:
        assert answer == b"" or answer.startswith(b"HTTP/1.1 503 "), answer[:80]
    assert any(answer.startswith(b"HTTP/1.1 503 ") for answer in refused)
    assert len(server.warnings("connection_cap")) == 1


def test_websocket_upgrade_attempts_write_at_most_one_line(tmp_path: Path) -> None:
    upgrade = (
        b"GET /mcp HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: Upgrade\r\nupgrade: websocket\r\n"
        b"sec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    with serving(tmp_path) as server:
        for _ in range(3):
            with connect(server.port) as sock:
                sock.sendall(upgrade)
                assert sock.recv(4096).startswith(b"HTTP/1.1 406 ")  # answered as plain HTTP
        lines = check_log_lines(server.log.read_bytes())
    assert len(server.warnings("upgrade")) == 1
    assert not [
        line for line in lines if "upgrade" in str(line.get("event", "")).lower() and not line.get("offence")
    ]


def test_an_idle_keep_alive_connection_is_closed_after_the_keepalive_timeout(tmp_path: Path) -> None:
    with serving(tmp_path, MCPSERVE_KEEPALIVE_TIMEOUT="1") as server, connect(server.port) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        answered = time.monotonic()
        everything = answer_or_closed(sock)  # the answer, then the end of the idle connection
        idle = time.monotonic() - answered
    assert everything.startswith(b"HTTP/1.1 200 ")
    assert 0.9 <= idle < 5
