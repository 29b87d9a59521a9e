"""stdio transport: newline-delimited JSON-RPC, era fixing, EOF, cancellation and framing errors.

The first half drives real ``mcpserve serve --transport stdio`` child processes over pipes; the
second half runs :class:`StdioConnection` in-process for the paths that need precise control.
"""

from __future__ import annotations

import io
import itertools
import os
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream

from mcpserve.errors import ToolError
from mcpserve.protocol.sealing import KeyRing
from mcpserve.server.dispatch import Dispatcher
from mcpserve.transports.stdio import StdioConnection, read_lines, serve_stdio
from mcpserve.types import JSONObject
from tests.support.logcheck import check_log_lines
from tests.support.processes import ROOT, child_env, mcpserve_argv
from tests.support.wire import initialize_request, modern_request
from tests.transports import stdio_app

pytestmark = pytest.mark.anyio

APP = str(Path(stdio_app.__file__).relative_to(ROOT))
MAX_LINE = 1024 * 1024
_spawned = itertools.count()


@dataclass
class Child:
    """One ``mcpserve serve --transport stdio`` process and its pipes."""

    process: Process
    stdout: BufferedByteReceiveStream
    stderr_path: Path
    lines: list[bytes]

    async def send(self, message: JSONObject) -> None:
        await self.send_raw(orjson.dumps(message))

    async def send_raw(self, line: bytes) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send(line + b"\n")

    async def receive(self) -> JSONObject:
        with anyio.fail_after(5):
            line = await self.stdout.receive_until(b"\n", MAX_LINE)
        self.lines.append(line)
        message: JSONObject = orjson.loads(line)
        return message

    async def request(self, message: JSONObject) -> JSONObject:
        """Send a request and return its response, skipping notifications."""
        await self.send(message)
        while True:
            received = await self.receive()
            if received.get("id") == message["id"] and "method" not in received:
                return received

    async def finish(self) -> list[JSONObject]:
        """Close stdin, read stdout to EOF and wait for the exit. Returns the remaining messages."""
        assert self.process.stdin is not None
        await self.process.stdin.aclose()
        rest: list[JSONObject] = []
        with anyio.fail_after(10):
            while True:
                try:
                    rest.append(await self.receive())
                except anyio.IncompleteRead:
                    break
            await self.process.wait()
        return rest

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()


@asynccontextmanager
async def child(tmp_path: Path, *args: str, **env: str) -> AsyncIterator[Child]:
    stderr_path = tmp_path / f"stderr-{next(_spawned)}.log"
    with stderr_path.open("wb") as stderr:
        argv = mcpserve_argv("serve", "--transport", "stdio", *args)
        process = await anyio.open_process(argv, stderr=stderr, env=child_env(**env), cwd=ROOT)
        async with process:
            assert process.stdout is not None
            spawned = Child(process, BufferedByteReceiveStream(process.stdout), stderr_path, [])
            try:
                yield spawned
            finally:
                if process.returncode is None:
                    process.kill()
                    await process.wait()
    check_log_lines(stderr_path.read_bytes())


def _assert_json_rpc_lines(lines: list[bytes]) -> None:
    for line in lines:
        message = orjson.loads(line)
        assert message["jsonrpc"] == "2.0", line
        assert "\n" not in line.decode()


# -- real child processes ----------------------------------------------------------------------------


@pytest.mark.slow
async def test_modern_first_message_fixes_the_era_and_initialize_is_refused(tmp_path: Path) -> None:
    async with child(tmp_path, APP) as server:
        discover = await server.request(modern_request(1, "server/discover"))
        assert discover["result"]["supportedVersions"] == ["2026-07-28"]
        assert discover["result"]["instructions"] == "Transport test fixture."
        refused = await server.request(initialize_request(2))
        assert refused["error"]["code"] == -32022
        assert refused["error"]["data"] == {"supported": ["2026-07-28"], "requested": "2025-11-25"}
        ping = await server.request({"jsonrpc": "2.0", "id": 3, "method": "ping"})
        assert ping["error"]["code"] == -32602  # no _meta: a modern process needs one on every request
        ping = await server.request(modern_request(4, "ping"))
        assert ping["error"]["code"] == -32601
        echo = await server.request(
            modern_request(5, "tools/call", {"name": "echo", "arguments": {"text": "hi"}})
        )
        assert echo["result"]["structuredContent"] == {"result": "hi"}
        assert await server.finish() == []
    assert server.process.returncode == 0
    _assert_json_rpc_lines(server.lines)


@pytest.mark.slow
async def test_initialize_first_fixes_the_legacy_era(tmp_path: Path) -> None:
    async with child(tmp_path, APP) as server:
        initialized = await server.request(initialize_request(0, "2025-06-18", elicitation={}))
        assert initialized["result"]["protocolVersion"] == "2025-06-18"
        assert initialized["result"]["serverInfo"]["name"] == "stdio-test"
        await server.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        discover = await server.request(modern_request(1, "server/discover"))
        assert discover["error"]["code"] == -32601
        assert (await server.request({"jsonrpc": "2.0", "id": 2, "method": "ping"}))["result"] == {}
        again = await server.request(initialize_request(3))
        assert again["error"]["code"] == -32602

        # A real server→client request for the elicitation, answered on stdin.
        await server.send({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "confirm"}})
        question = await server.receive()
        assert question["method"] == "elicitation/create"
        assert question["params"]["message"] == "OK?"
        answer = {"action": "accept", "content": {"ok": True}}
        await server.send({"jsonrpc": "2.0", "id": question["id"], "result": answer})
        result = await server.receive()
        assert result["id"] == 4
        assert result["result"]["structuredContent"] == {"result": "accept:True"}
        assert await server.finish() == []
    assert server.process.returncode == 0


@pytest.mark.slow
async def test_stdout_carries_only_protocol_messages_and_logs_go_to_stderr(tmp_path: Path) -> None:
    async with child(tmp_path, APP, MCPSERVE_LOG_LEVEL="info") as server:
        crashed = await server.request(modern_request(1, "tools/call", {"name": "crash"}))
        text = crashed["result"]["content"][0]["text"]
        assert crashed["result"]["isError"] is True
        assert "secret detail" not in text
        error_id = text.rsplit("error id ", 1)[1].rstrip(")")
        await server.send(modern_request(2, "tools/call", {"name": "shout"}, log_level="info"))
        messages = [await server.receive() for _ in range(3)]
        assert [m.get("method") for m in messages] == ["notifications/message", "notifications/message", None]
        assert await server.finish() == []
    assert server.process.returncode == 0
    _assert_json_rpc_lines(server.lines)
    stderr = server.stderr
    assert error_id in stderr
    assert "secret detail that must stay in the server log" in stderr
    assert "Traceback" in stderr


@pytest.mark.slow
async def test_eof_answers_every_request_already_written_then_exits_cleanly(tmp_path: Path) -> None:
    requests = [
        modern_request(i, "tools/call", {"name": "echo", "arguments": {"text": f"m{i}"}}) for i in range(25)
    ]
    requests.append(modern_request("list", "tools/list"))
    async with child(tmp_path, APP) as server:
        assert server.process.stdin is not None
        await server.process.stdin.send(b"".join(orjson.dumps(r) + b"\n" for r in requests))
        responses = await server.finish()
    assert server.process.returncode == 0
    by_id = {r["id"]: r for r in responses}
    assert set(by_id) == {r["id"] for r in requests}
    assert all(by_id[i]["result"]["structuredContent"] == {"result": f"m{i}"} for i in range(25))
    assert len(by_id["list"]["result"]["tools"]) == 6


@pytest.mark.slow
async def test_cancelled_request_gets_no_response(tmp_path: Path) -> None:
    async with child(tmp_path, APP, MCPSERVE_TOOL_TIMEOUT="30") as server:
        await server.send(modern_request(1, "tools/call", {"name": "hang"}, progress_token="h"))
        started = await server.receive()
        assert started["method"] == "notifications/progress"
        assert started["params"]["progressToken"] == "h"
        cancel = {"requestId": 1, "reason": "user gave up"}
        await server.send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": cancel})
        await server.send(
            {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 99}}
        )
        echo = await server.request(
            modern_request(2, "tools/call", {"name": "echo", "arguments": {"text": "x"}})
        )
        assert echo["result"]["structuredContent"] == {"result": "x"}
        assert await server.finish() == []
    assert server.process.returncode == 0
    assert not any(orjson.loads(line).get("id") == 1 for line in server.lines)


@pytest.mark.slow
async def test_framing_errors_get_error_replies_and_the_connection_keeps_working(tmp_path: Path) -> None:
    async with child(tmp_path, APP, MCPSERVE_MAX_BODY_BYTES="1024") as server:
        await server.send_raw(b"x" * 5000)
        too_long = await server.receive()
        assert too_long["id"] is None
        assert too_long["error"]["code"] == -32600
        assert "1024" in too_long["error"]["message"]
        await server.send_raw(b"{not json")
        assert await server.receive() == {
            "jsonrpc": "2.0",
            "id": None,
            "error": {"code": -32700, "message": "Parse error: the body is not valid JSON"},
        }
        await server.send_raw(orjson.dumps([modern_request(9, "tools/list")]))
        batch = await server.receive()
        assert batch["id"] is None
        assert batch["error"]["code"] == -32600
        await server.send({"jsonrpc": "2.0", "id": 10, "method": ""})
        assert (await server.receive())["error"] == {
            "code": -32600,
            "message": "Invalid request: method must be a non-empty string",
        }
        await server.send_raw(b"   ")
        listed = await server.request(modern_request(11, "tools/list"))
        assert [t["name"] for t in listed["result"]["tools"]][:2] == ["hang", "echo"]
        assert await server.finish() == []
    assert server.process.returncode == 0


# -- in process ------------------------------------------------------------------------------------------


def _dispatcher(**options: Any) -> Dispatcher:
    return Dispatcher(stdio_app.app, keyring=KeyRing([bytes(32)]), **options)


def _reader(*chunks: bytes) -> Callable[[int], Awaitable[bytes]]:
    pending = list(chunks)

    async def read(size: int) -> bytes:
        return pending.pop(0) if pending else b""

    return read


async def _collect(read: Callable[[int], Awaitable[bytes]], max_bytes: int) -> list[bytes | None]:
    return [line async for line in read_lines(read, max_bytes)]


async def test_read_lines_reassembles_lines_across_chunks() -> None:
    lines = await _collect(_reader(b'{"a"', b':1}\n{"b":2}\n\n  \n{"c"', b":3}"), 100)
    assert lines == [b'{"a":1}', b'{"b":2}', b'{"c":3}']


async def test_read_lines_replaces_an_over_long_line_with_none_and_resynchronises() -> None:
    lines = await _collect(_reader(b"x" * 30 + b"\nok\n"), 10)
    assert lines == [None, b"ok"]
    spread = await _collect(_reader(b"y" * 8, b"y" * 8, b"y" * 8, b"\nok\n"), 10)
    assert spread == [None, b"ok"]
    unterminated = await _collect(_reader(b"z" * 30), 10)
    assert unterminated == []


async def test_serve_stdio_over_byte_streams_answers_in_order_of_completion() -> None:
    stdin = io.BytesIO(
        orjson.dumps(modern_request(1, "tools/call", {"name": "echo", "arguments": {"text": "a"}}))
        + b"\n"
        + orjson.dumps(modern_request(2, "server/discover"))
        + b"\n"
    )
    stdout = io.BytesIO()
    with anyio.fail_after(5):
        await serve_stdio(_dispatcher(), stdin, stdout, max_line_bytes=MAX_LINE)
    replies = [orjson.loads(line) for line in stdout.getvalue().splitlines()]
    assert sorted(r["id"] for r in replies) == [1, 2]


async def test_serve_stdio_over_pipes_answers_everything_and_leaves_the_pipes_blocking() -> None:
    """Pipes are served on the event loop (non-blocking meanwhile); at EOF every reply is out and
    the descriptors are as they were, for whoever shares them."""
    requests = b"".join(
        orjson.dumps(modern_request(n, "tools/call", {"name": "echo", "arguments": {"text": str(n)}})) + b"\n"
        for n in range(50)
    )
    in_read, in_write = os.pipe()
    out_read, out_write = os.pipe()
    os.write(in_write, requests)
    os.close(in_write)
    with os.fdopen(in_read, "rb", buffering=0) as stdin, os.fdopen(out_write, "wb", buffering=0) as stdout:
        with anyio.fail_after(10):
            await serve_stdio(_dispatcher(), stdin, stdout, max_line_bytes=MAX_LINE)
        assert os.get_blocking(in_read) and os.get_blocking(out_write)
    with os.fdopen(out_read, "rb") as replies:
        texts = {r["id"]: r["result"]["content"][0]["text"] for r in map(orjson.loads, replies)}
    assert texts == {n: str(n) for n in range(50)}


async def test_serve_stdio_to_a_regular_file_writes_every_reply(tmp_path: Path) -> None:
    """A file cannot be polled: it is written from a worker thread, all of it before returning."""
    path = tmp_path / "out.jsonl"
    stdin = io.BytesIO(
        b"".join(orjson.dumps(modern_request(n, "server/discover")) + b"\n" for n in range(20))
    )
    with path.open("wb") as stdout, anyio.fail_after(10):
        await serve_stdio(_dispatcher(), stdin, stdout, max_line_bytes=MAX_LINE)
    assert sorted(orjson.loads(line)["id"] for line in path.read_bytes().splitlines()) == list(range(20))


@dataclass
class InProcess:
    """A StdioConnection fed from a memory stream, its writes collected in another."""

    send: Any
    replies: Any
    connection: StdioConnection
    written: list[JSONObject]

    async def write(self, message: JSONObject) -> None:
        await self.send.send(orjson.dumps(message))

    async def receive(self) -> JSONObject:
        with anyio.fail_after(5):
            message: JSONObject = await self.replies.receive()
        return message


@asynccontextmanager
async def in_process(dispatcher: Dispatcher | None = None) -> AsyncIterator[InProcess]:
    line_send, line_receive = anyio.create_memory_object_stream[bytes | None](100)
    out_send, out_receive = anyio.create_memory_object_stream[JSONObject](100)
    written: list[JSONObject] = []

    def write(data: bytes) -> None:
        assert data.endswith(b"\n") and data.count(b"\n") == 1
        written.append(orjson.loads(data))
        out_send.send_nowait(written[-1])

    async def lines() -> AsyncIterator[bytes | None]:
        async with line_receive:
            async for line in line_receive:
                yield line

    connection = StdioConnection(dispatcher or _dispatcher(), write, max_line_bytes=MAX_LINE)
    async with out_send, out_receive, anyio.create_task_group() as group:
        group.start_soon(connection.run, lines())
        harness = InProcess(line_send, out_receive, connection, written)
        try:
            yield harness
        finally:
            await line_send.aclose()


async def test_legacy_connection_forwards_list_changes_and_subscribed_resource_updates() -> None:
    async with in_process() as conn:
        await conn.write(initialize_request(0))
        assert (await conn.receive())["result"]["protocolVersion"] == "2025-11-25"
        await conn.write({"jsonrpc": "2.0", "method": "notifications/initialized"})
        await conn.write(
            {"jsonrpc": "2.0", "id": 2, "method": "resources/subscribe", "params": {"uri": "config://x"}}
        )
        assert (await conn.receive())["result"] == {}
        await conn.write({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "touch"}})
        received = [await conn.receive() for _ in range(3)]
        methods = [(m.get("method"), m.get("params")) for m in received if "method" in m]
        assert methods == [
            ("notifications/tools/list_changed", {}),
            ("notifications/resources/updated", {"uri": "config://x"}),
        ]
        await conn.write(
            {"jsonrpc": "2.0", "id": 4, "method": "logging/setLevel", "params": {"level": "error"}}
        )
        assert (await conn.receive())["result"] == {}
        await conn.write({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "shout"}})
        logged = await conn.receive()
        assert logged["params"] == {"level": "error", "data": "error line"}
        assert (await conn.receive())["id"] == 5
    assert conn.connection.session is not None
    assert conn.connection.session.log_level == "error"


async def test_legacy_connection_sends_no_change_notifications_before_initialized() -> None:
    async with in_process() as conn:
        await conn.write(initialize_request(0))
        await conn.write({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "touch"}})
        await conn.write(
            {"jsonrpc": "2.0", "id": 2, "method": "resources/subscribe", "params": {"uri": "config://x"}}
        )
        await conn.write({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "touch"}})
    assert sorted(message["id"] for message in conn.written) == [0, 1, 2, 3]


async def test_modern_connection_sends_no_unsolicited_notifications() -> None:
    async with in_process() as conn:
        await conn.write(modern_request(1, "tools/call", {"name": "touch"}))
        await conn.write(modern_request(2, "tools/call", {"name": "echo", "arguments": {"text": "after"}}))
    assert sorted(message["id"] for message in conn.written) == [1, 2]
    assert conn.connection.era == "modern"


async def test_client_error_for_a_server_request_is_an_error_result() -> None:
    async with in_process() as conn:
        await conn.write(initialize_request(0, elicitation={}))
        await conn.receive()
        await conn.write({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "confirm"}})
        question = await conn.receive()
        await conn.write({"jsonrpc": "2.0", "id": "unrelated", "result": {}})
        await conn.write(
            {"jsonrpc": "2.0", "id": question["id"], "error": {"code": -1, "message": "user is away"}}
        )
        result = (await conn.receive())["result"]
        assert result["isError"] is True
        assert result["content"][0]["text"] == "The client refused elicitation/create: user is away"


async def test_eof_while_waiting_for_the_client_ends_the_request_with_an_error_result() -> None:
    async with in_process() as conn:
        await conn.write(initialize_request(0, elicitation={}))
        await conn.receive()
        await conn.write({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "confirm"}})
        assert (await conn.receive())["method"] == "elicitation/create"
        await conn.send.aclose()
        result = (await conn.receive())["result"]
    assert result["content"][0]["text"] == "The client closed the connection before answering"


async def test_tool_timeout_applies_on_stdio() -> None:
    async with in_process(_dispatcher(tool_timeout=0.1)) as conn:
        await conn.write(modern_request(1, "tools/call", {"name": "hang"}))
        result = (await conn.receive())["result"]
    assert result["isError"] is True
    assert "timed out" in result["content"][0]["text"]


async def test_too_long_line_marker_gets_an_error_with_null_id() -> None:
    async with in_process() as conn:
        await conn.send.send(None)
        error = await conn.receive()
        assert error["id"] is None and error["error"]["code"] == -32600
        await conn.write({"jsonrpc": "2.0", "id": 7, "method": "tools/list"})
        invalid = await conn.receive()
        assert invalid["id"] == 7 and invalid["error"]["code"] == -32602
        await conn.write({"jsonrpc": "2.0", "id": True, "method": "tools/list"})
        assert (await conn.receive())["id"] is None


@pytest.mark.parametrize(
    ("meta", "code"),
    [
        (None, -32602),
        ({"io.modelcontextprotocol/protocolVersion": "2026-07-28"}, -32602),
        ({"io.modelcontextprotocol/clientCapabilities": {}}, -32602),
        (
            {
                "io.modelcontextprotocol/protocolVersion": "2099-01-01",
                "io.modelcontextprotocol/clientCapabilities": {},
            },
            -32022,
        ),
        (
            {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {},
                "io.modelcontextprotocol/logLevel": "chatty",
            },
            -32602,
        ),
    ],
)
async def test_rejected_envelope_does_not_fix_the_era(meta: JSONObject | None, code: int) -> None:
    async with in_process() as conn:
        params: JSONObject = {} if meta is None else {"_meta": meta}
        await conn.write({"jsonrpc": "2.0", "id": "bad", "method": "tools/list", "params": params})
        rejected = await conn.receive()
        assert rejected["id"] == "bad"
        assert rejected["error"]["code"] == code
        if code == -32022:
            assert rejected["error"]["data"] == {"supported": ["2026-07-28"], "requested": "2099-01-01"}
        assert conn.connection.era is None
        await conn.write(initialize_request(0))
        assert (await conn.receive())["result"]["protocolVersion"] == "2025-11-25"
    assert conn.connection.era == "legacy"


async def test_unknown_notifications_are_ignored() -> None:
    async with in_process() as conn:
        await conn.write({"jsonrpc": "2.0", "method": "notifications/initialized"})
        await conn.write(initialize_request(0))
        await conn.receive()
        await conn.write({"jsonrpc": "2.0", "method": "notifications/roots/list_changed"})
        await conn.write(
            {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": "gone"}}
        )
        await conn.write({"jsonrpc": "2.0", "id": 1, "method": "ping"})
        assert await conn.receive() == {"jsonrpc": "2.0", "id": 1, "result": {}}
    assert conn.connection.session is not None and not conn.connection.session.initialized


async def test_server_request_after_eof_fails_at_once() -> None:
    async with in_process() as conn:
        pass
    with anyio.fail_after(5), pytest.raises(ToolError, match="closed the connection"):
        await conn.connection.ask("roots/list", {})


@pytest.mark.slow
def test_empty_input_exits_cleanly_without_output() -> None:
    completed = subprocess.run(
        mcpserve_argv("serve", "--transport", "stdio", APP),
        input=b"",
        capture_output=True,
        env=child_env(),
        cwd=ROOT,
        timeout=30,
        check=False,
    )
    assert completed.returncode == 0
    assert completed.stdout == b""


async def test_ping_before_initialize_is_answered_and_leaves_the_era_open() -> None:
    async with in_process() as harness:
        await harness.write({"jsonrpc": "2.0", "id": 1, "method": "ping"})
        assert await harness.receive() == {"jsonrpc": "2.0", "id": 1, "result": {}}
        assert harness.connection.era is None
        await harness.write(modern_request(2, "server/discover"))
        assert (await harness.receive())["result"]["supportedVersions"] == ["2026-07-28"]
        assert harness.connection.era == "modern"
        await harness.write(initialize_request(3))
        refused = await harness.receive()
        assert refused["error"]["code"] == -32022
        assert "serves 2026-07-28" in refused["error"]["message"]


@pytest.mark.slow
async def test_rate_limits_apply_per_process(tmp_path: Path) -> None:
    limits = {"MCPSERVE_RATE_LIMIT_PER_MINUTE": "2", "MCPSERVE_TOOL_RATE_LIMITS": '{"echo": {"per_hour": 5}}'}
    async with child(tmp_path, APP, **limits) as server:
        answers = [
            await server.request(
                modern_request(n, "tools/call", {"name": "echo", "arguments": {"text": "hi"}})
            )
            for n in range(3)
        ]
        assert [a.get("result", {}).get("structuredContent") for a in answers[:2]] == [{"result": "hi"}] * 2
        error = answers[2]["error"]
        assert error["code"] == -31001
        assert 59 <= error["data"]["retryAfter"] <= 61
        assert (await server.request(modern_request(9, "tools/list")))["result"]["tools"]  # not limited
        assert await server.finish() == []
    assert server.process.returncode == 0
