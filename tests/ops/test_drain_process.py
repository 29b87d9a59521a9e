"""SIGTERM on a real server process: in-flight calls finish, new work is refused, exit 0."""

from __future__ import annotations

import contextlib
import http.client
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support.asgi import META, MODERN_HEADERS
from tests.support.logcheck import check_log_lines
from tests.support.processes import child_env, mcpserve_argv
from tests.support.servers import free_port, wait_healthy

pytestmark = pytest.mark.slow

APP = Path(__file__).with_name("drain_app.py")
CALLS = 20
DRAIN_TIMEOUT = 20.0


def post(url: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, str], Any]:
    request = urllib.request.Request(url, orjson.dumps(body), headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, dict(response.headers), orjson.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), orjson.loads(error.read())


def get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def hold_call(url: str, gate: int, index: int, tool: str = "hold") -> tuple[int, dict[str, str], Any]:
    return post(url, *hold_request(gate, index, tool))


def hold_request(gate: int, index: int, tool: str) -> tuple[dict[str, Any], dict[str, str]]:
    meta = {**META, "progressToken": index}
    body = {
        "jsonrpc": "2.0",
        "id": index,
        "method": "tools/call",
        "params": {"name": tool, "arguments": {"gate": gate, "index": index}, "_meta": meta},
    }
    return body, {**MODERN_HEADERS, "mcp-method": "tools/call", "mcp-name": tool}


def raw_post(url: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, orjson.dumps(body), headers, method="POST")
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.status, dict(response.headers), response.read()


def sse_events(body: bytes) -> list[Any]:
    blocks = [block.split("\n") for block in body.decode().split("\n\n")]
    return [orjson.loads(line[6:]) for lines in blocks for line in lines if line.startswith("data: ")]


def initialize_call(url: str) -> tuple[int, dict[str, str], Any]:
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"},
        },
    }
    return post(
        url, body, {"content-type": "application/json", "accept": "application/json, text/event-stream"}
    )


@contextlib.contextmanager
def server(log: Path, **env: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    argv = mcpserve_argv("serve", str(APP), "--host", "127.0.0.1", "--port", str(port))
    with log.open("wb") as output:
        process = subprocess.Popen(
            argv,
            env=child_env(**{"MCPSERVE_AUTH": "none", "MCPSERVE_DRAIN_TIMEOUT": str(DRAIN_TIMEOUT), **env}),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=output,
        )
        try:
            wait_healthy(f"http://127.0.0.1:{port}/health", process)
            yield process, f"http://127.0.0.1:{port}"
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()


def wait_draining(base: str) -> None:
    """Poll /ready until the server reports the drain it started on the signal."""
    end = time.monotonic() + 10
    while time.monotonic() < end:
        status, body = get(f"{base}/ready")
        if status == 503:
            assert orjson.loads(body) == {"status": "draining"}
            return
        time.sleep(0.02)  # polling interval for a state change in another process
    raise TimeoutError("the server never reported draining")


def accept_all(gate: socket.socket, count: int) -> list[socket.socket]:
    gate.settimeout(30)
    return [gate.accept()[0] for _ in range(count)]


DRAIN_DELAY = 1.5


class KeptAlive:
    """One client keep-alive connection, opened before the signal (as a proxy's pool holds them)."""

    def __init__(self, base: str) -> None:
        host, port = base.removeprefix("http://").split(":")
        self.connection = http.client.HTTPConnection(host, int(port), timeout=30)
        self.connection.request("GET", "/health")
        response = self.connection.getresponse()
        response.read()
        assert response.status == 200 and not response.will_close

    def post(self, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        self.connection.request("POST", "/mcp", orjson.dumps(body), headers)
        response = self.connection.getresponse()
        return (
            response.status,
            {k.lower(): v for k, v in response.getheaders()},
            orjson.loads(response.read()),
        )


def echo_request(text: str) -> tuple[dict[str, Any], dict[str, str]]:
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": text}, "_meta": META},
    }
    return body, {**MODERN_HEADERS, "mcp-method": "tools/call", "mcp-name": "echo"}


def refuses_connections(base: str) -> bool:
    host, port = base.removeprefix("http://").split(":")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def wait_until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    end = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError(what)
        time.sleep(0.02)  # polling interval for a state change in another process


def test_sigterm_drains_twenty_in_flight_calls_and_exits_zero(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    env = {"MCPSERVE_DRAIN_DELAY": str(DRAIN_DELAY), "MCPSERVE_KEEPALIVE_TIMEOUT": "60"}
    with (
        socket.create_server(("127.0.0.1", 0)) as gate,
        server(log, **env) as (process, base),
        ThreadPoolExecutor(CALLS) as pool,
    ):
        port = gate.getsockname()[1]
        calls: list[Future[tuple[int, dict[str, str], Any]]] = [
            pool.submit(hold_call, f"{base}/mcp", port, i) for i in range(CALLS)
        ]
        kept, legacy = KeptAlive(base), KeptAlive(base)
        held = accept_all(gate, CALLS)  # every call is inside the tool now
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        wait_draining(base)
        # The pre-stop delay: readiness fails, yet a new connection is still served normally.
        status, _, body = post(f"{base}/mcp", *echo_request("during the delay"))
        assert (status, body["result"]["structuredContent"]["result"]) == (200, "during the delay")
        assert time.monotonic() - signalled < DRAIN_DELAY

        # Then the listener closes: a proxy's next connection is refused (and retried elsewhere),
        # never answered 503; a kept-alive connection gets its answer and Connection: close.
        wait_until(lambda: refuses_connections(base), 10, "the listener never closed")
        assert time.monotonic() - signalled >= DRAIN_DELAY
        status, headers, body = kept.post(*echo_request("after the delay"))
        assert (status, headers["connection"]) == (200, "close")
        assert body["result"]["structuredContent"]["result"] == "after the delay"
        # What cannot be handed over is still refused, before anything runs: a new session here.
        initialize = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t"}},
        }
        status, headers, body = legacy.post(
            initialize, {"content-type": "application/json", "accept": "application/json, text/event-stream"}
        )
        assert (status, headers["retry-after"], body["error"]["code"]) == (503, "2", -31000)
        assert process.poll() is None  # still waiting for the 20 calls

        for connection in held:
            connection.sendall(b"go")
            connection.close()
        results = [call.result(timeout=30) for call in calls]
        assert process.wait(timeout=DRAIN_TIMEOUT) == 0
        elapsed = time.monotonic() - signalled
    assert elapsed < DRAIN_DELAY + DRAIN_TIMEOUT
    assert sorted(r[2]["result"]["structuredContent"]["result"] for r in results) == sorted(
        f"done {i}" for i in range(CALLS)
    )
    assert {r[0] for r in results} == {200}
    assert {r[1]["connection"] for r in results} == {"close"}  # each in-flight answer ended its connection
    lines = check_log_lines(log.read_bytes())
    requests = [line for line in lines if line.get("event") == "request"]
    assert len([r for r in requests if r["tool"] == "hold" and r["status"] == 200]) == CALLS
    assert [r["status"] for r in requests if r["tool"] == "echo"] == [200, 200]
    assert [r["status"] for r in requests if r["method"] in ("initialize",)] == [503]
    events = [line["event"] for line in lines]
    assert str(events[0]).startswith("mcpserve ") and "starting on http://127.0.0.1:" in str(events[0])
    assert any(str(e).startswith("SIGTERM received") for e in events)


def test_second_signal_exits_at_once_and_metrics_port(tmp_path: Path) -> None:
    metrics_port = free_port()
    with (
        socket.create_server(("127.0.0.1", 0)) as gate,
        server(tmp_path / "server.log", MCPSERVE_METRICS_PORT=str(metrics_port)) as (process, base),
        ThreadPoolExecutor(1) as pool,
    ):
        metrics_status, metrics_body = get(f"http://127.0.0.1:{metrics_port}/metrics")
        assert metrics_status == 200
        assert b"mcp_requests_in_flight 0.0" in metrics_body
        assert get(f"{base}/metrics")[0] == 404
        assert get(f"http://127.0.0.1:{metrics_port}/ready")[0] == 200

        pool.submit(hold_call, f"{base}/mcp", gate.getsockname()[1], 0)
        held = accept_all(gate, 1)
        process.send_signal(signal.SIGTERM)
        wait_draining(f"http://127.0.0.1:{metrics_port}")  # the main listener is closed by now
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 128 + signal.SIGTERM
        held[0].close()


CUT_OFF_TIMEOUT = 1.0


def test_calls_running_at_the_drain_deadline_answer_503_and_exit_zero(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    url_of = "{}/mcp".format
    with (
        socket.create_server(("127.0.0.1", 0)) as gate,
        server(log, MCPSERVE_DRAIN_TIMEOUT=str(CUT_OFF_TIMEOUT)) as (process, base),
        ThreadPoolExecutor(3) as pool,
    ):
        port = gate.getsockname()[1]
        plain = [
            pool.submit(hold_call, url_of(base), port, i, tool) for i, tool in ((1, "hold"), (2, "hold_sync"))
        ]
        streaming = pool.submit(raw_post, url_of(base), *hold_request(port, 3, "hold_streaming"))
        held = accept_all(gate, 3)  # all three are inside their tools, none will be released
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=CUT_OFF_TIMEOUT + 10) == 0
        elapsed = time.monotonic() - signalled
        answers = [call.result(timeout=10) for call in plain]
        stream_status, stream_headers, stream_body = streaming.result(timeout=10)
        for connection in held:
            connection.close()
    assert elapsed >= CUT_OFF_TIMEOUT
    for index, (status, headers, body) in enumerate(answers, start=1):
        assert (status, headers["retry-after"], headers["content-type"]) == (503, "2", "application/json")
        assert body["id"] == index and body["error"]["code"] == -31000
        assert "shutting down" in body["error"]["message"]
    assert (stream_status, stream_headers["content-type"]) == (200, "text/event-stream")
    events = sse_events(stream_body)
    assert events[0]["method"] == "notifications/progress"
    assert events[-1]["id"] == 3 and events[-1]["error"]["code"] == -31000

    text = log.read_bytes()
    assert b"Exception in ASGI application" not in text and b"Traceback" not in text
    lines = check_log_lines(text)
    requests = {line["tool"]: line for line in lines if line.get("event") == "request"}
    assert {tool: (r["status"], r["outcome"]) for tool, r in requests.items()} == {
        "hold": (503, "error"),
        "hold_sync": (503, "error"),
        "hold_streaming": (200, "error"),
    }
    events_logged = [str(line["event"]) for line in lines]
    assert not any(event.startswith("drained in") for event in events_logged)
    [deadline] = [event for event in events_logged if event.startswith("drain deadline")]
    assert "3 call(s) cut off with 503" in deadline


def test_sigint_the_interactive_stop_skips_the_pre_stop_delay(tmp_path: Path) -> None:
    with server(tmp_path / "server.log", MCPSERVE_DRAIN_DELAY="60") as (process, base):
        assert get(f"{base}/health")[0] == 200
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0  # far sooner than the 60 s delay SIGTERM would wait
