"""Fuzz the stdio transport with hypothesis: the line reader against a model, and whole
connections fed broken lines.

Properties: the reader yields exactly the non-blank lines (``None`` for over-long ones) however
the bytes are chunked; a connection never raises, writes only well-formed JSON-RPC lines, and
still answers a good request after whatever came before it.
"""

from __future__ import annotations

import io
import itertools
import threading
from collections.abc import AsyncIterator
from typing import Any

import anyio
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcpserve.server.dispatch import Dispatcher
from mcpserve.transports.stdio import StdioConnection, read_lines
from tests.fuzz.app import make_server
from tests.fuzz.strategies import bodies, check_jsonrpc, fuzz
from tests.support.asgi import META

pytestmark = pytest.mark.anyio

MAX_LINE = 24


def expected_lines(data: bytes, max_bytes: int) -> list[bytes | None]:
    """The reader's contract, stated plainly."""
    *complete, last = data.split(b"\n")
    found: list[bytes | None] = []
    for line in complete:
        if len(line) > max_bytes:
            found.append(None)
        elif line.strip():
            found.append(line)
    if last.strip() and len(last) <= max_bytes:
        found.append(last)
    return found


line_bytes = st.lists(
    st.one_of(
        st.binary(max_size=2 * MAX_LINE),
        st.sampled_from([b"\n", b"\r\n", b" \n", b"\n\n", b"x" * (MAX_LINE + 1)]),
    ),
    max_size=6,
).map(b"".join)


@fuzz(2500)
@given(data=line_bytes, cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=4))
async def test_the_reader_yields_every_line_however_the_bytes_arrive(data: bytes, cuts: list[int]) -> None:
    bounds = sorted({0, len(data), *(min(cut, len(data)) for cut in cuts)})
    chunks = [data[start:end] for start, end in itertools.pairwise(bounds)]
    pending = iter(chunks)

    async def read(size: int) -> bytes:
        return next(pending, b"")

    with anyio.fail_after(5):
        found = [line async for line in read_lines(read, MAX_LINE)]
    assert found == expected_lines(data, MAX_LINE)


@pytest.fixture(scope="module")
def dispatcher() -> Dispatcher:
    return Dispatcher(make_server(), tool_timeout=5)


lines = st.lists(
    st.one_of(bodies.map(lambda body: body.replace(b"\n", b" ")), st.none()), min_size=1, max_size=4
)


@fuzz(1500)
@given(received=lines)
async def test_any_lines_get_well_formed_answers_and_the_connection_keeps_serving(
    dispatcher: Dispatcher, received: list[bytes | None]
) -> None:
    written = io.BytesIO()
    connection = StdioConnection(dispatcher, written.write, max_line_bytes=4096)

    async def feed() -> AsyncIterator[bytes | None]:
        for line in received:
            yield line
        # A good request for whichever era the fuzz left the connection in.
        if connection.era == "legacy":
            yield orjson.dumps({"jsonrpc": "2.0", "id": "probe", "method": "ping"})
        else:
            probe: dict[str, Any] = {
                "jsonrpc": "2.0",
                "id": "probe",
                "method": "tools/list",
                "params": {"_meta": META},
            }
            yield orjson.dumps(probe)

    with anyio.fail_after(10):
        await connection.run(feed())
    replies = [orjson.loads(line) for line in written.getvalue().splitlines()]
    for reply in replies:
        check_jsonrpc(reply)
    [probe] = [r for r in replies if r.get("id") == "probe"]
    assert "result" in probe, probe


async def test_a_cancellation_naming_no_valid_request_id_is_ignored(dispatcher: Dispatcher) -> None:
    """Found by the fuzz on HTTP; stdio had the same unhashable lookup."""
    written = io.BytesIO()
    connection = StdioConnection(dispatcher, written.write, max_line_bytes=4096)

    async def feed() -> AsyncIterator[bytes | None]:
        yield orjson.dumps(
            {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": [[]]}}
        )
        yield orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": META}})

    with anyio.fail_after(5):
        await connection.run(feed())
    [reply] = [orjson.loads(line) for line in written.getvalue().splitlines()]
    assert reply["id"] == 1 and "tools" in reply["result"]


async def test_a_fault_while_reading_one_line_is_answered_and_the_connection_goes_on(
    dispatcher: Dispatcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    written = io.BytesIO()
    connection = StdioConnection(dispatcher, written.write, max_line_bytes=4096)
    receive = connection._receive
    faults = iter([RuntimeError("reader bug with /srv/path")])

    async def fails_once(line: bytes | None) -> None:
        fault = next(faults, None)
        if fault is not None:
            raise fault
        await receive(line)

    monkeypatch.setattr(connection, "_receive", fails_once)

    async def feed() -> AsyncIterator[bytes | None]:
        yield b"{}"
        yield orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": META}})

    with anyio.fail_after(5):
        await connection.run(feed())
    fault, reply = (orjson.loads(line) for line in written.getvalue().splitlines())
    assert fault["id"] is None and fault["error"]["code"] == -32603 and "/srv" not in str(fault)
    assert reply["id"] == 1 and "tools" in reply["result"]


async def test_a_change_notification_that_cannot_be_encoded_is_dropped_not_fatal() -> None:
    dispatcher = Dispatcher(make_server())
    lines: list[bytes] = []
    forwarded = threading.Event()

    def write(data: bytes) -> None:
        lines.append(data)
        if b"list_changed" in data:
            forwarded.set()

    connection = StdioConnection(dispatcher, write, max_line_bytes=4096)
    initialize = {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    }

    async def feed() -> AsyncIterator[bytes | None]:
        yield orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": initialize})
        yield orjson.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"})
        await dispatcher.server.bus.publish(
            {"method": "notifications/prompts/list_changed", "params": {"x": "\ud800"}}
        )
        await dispatcher.server.bus.publish({"method": "notifications/tools/list_changed", "params": {}})
        assert await anyio.to_thread.run_sync(forwarded.wait, 5)
        yield orjson.dumps({"jsonrpc": "2.0", "id": 2, "method": "ping"})

    with anyio.fail_after(10):
        await connection.run(feed())
    methods = [orjson.loads(line).get("method") for line in lines]
    assert "notifications/tools/list_changed" in methods
    assert "notifications/prompts/list_changed" not in methods
    assert orjson.loads(lines[-1]) == {"jsonrpc": "2.0", "id": 2, "result": {}}
