"""Standalone GET streams detached from their requests, on a real uvicorn with mcpserve's protocol
and real sockets: no task per open stream, and every behaviour of a stream kept (notifications,
keepalives, resumption, the end of its session, the drain, a client leaving, the connection
serving HTTP again afterwards), for memory and Redis state."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import anyio
import httpx
import pytest

from mcpserve import MCPServer
from mcpserve.config import load_settings
from mcpserve.runtime import build_http_app
from mcpserve.transports.http.app import HttpApp
from mcpserve.transports.http.protocol import CoalescingHttpToolsProtocol
from tests.support.asgi import rpc
from tests.support.inprocess import serve_in_process
from tests.support.polling import eventually

pytestmark = pytest.mark.anyio

KEY = "YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE"  # 32 bytes, base64url: a test key only
LEGACY = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
INIT = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
SWEEP = 0.2


OPEN: list[set[Any]] = []  # the server's set of open connections (streams included), once known


class _Noting(CoalescingHttpToolsProtocol):
    """Notes the server's set of open connections, as the drain sees them."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        OPEN[:] = [self.connections]
        super().connection_made(transport)


class Served:
    def __init__(self, app: HttpApp, port: int) -> None:
        self.app = app
        self.port = port
        self.url = f"http://127.0.0.1:{port}/mcp"

    def close_after_response(self) -> None:
        """What the drain does to every open connection when the listener closes."""
        for connection in list(OPEN[0]):
            connection.close_after_response()

    async def new_session(self) -> str:
        async with httpx.AsyncClient() as client:
            reply = await client.post(self.url, headers=LEGACY, content=rpc("initialize", INIT))
        assert reply.status_code == 200
        return reply.headers["mcp-session-id"]

    async def open_stream(self, session_id: str) -> Stream:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        writer.write(
            (
                f"GET /mcp HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nAccept: text/event-stream\r\n"
                f"Mcp-Session-Id: {session_id}\r\nMCP-Protocol-Version: 2025-11-25\r\n\r\n"
            ).encode()
        )
        stream = Stream(reader, writer)
        with anyio.fail_after(5):
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200"), head
            await stream.until(b"retry:")
        return stream


class Stream:
    """One GET stream on its own connection, read raw (chunked framing included)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.body = b""

    async def until(self, fragment: bytes, count: int = 1) -> None:
        while self.body.count(fragment) < count:
            data = await self.reader.read(65536)
            if not data:
                raise EOFError(f"closed before {fragment!r}: {self.body!r}")
            self.body += data

    async def ended(self) -> None:
        """The response's last chunk arrived."""
        with anyio.fail_after(5):
            await self.until(b"0\r\n\r\n")

    def close(self) -> None:
        self.writer.close()


@pytest.fixture(params=["memory", "redis"])
async def served(request: pytest.FixtureRequest) -> AsyncIterator[Served]:
    values: dict[str, Any] = {"auth": "none", "session_sweep_interval": SWEEP}
    if request.param == "redis":
        prefix = f"t-{uuid.uuid4().hex}:"
        values |= {"redis_url": request.getfixturevalue("redis_url"), "request_state_keys": KEY}
        values |= {"state_prefix": prefix}
    app = build_http_app(MCPServer("detached"), load_settings(values))
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(app.endpoint.dispatcher.server.lifespan())
        async for port in serve_in_process(app, _Noting):
            yield Served(app, port)


def event_ids(body: bytes) -> list[str]:
    return [line[4:] for line in body.decode().split("\n") if line.startswith("id: ")]


async def test_an_open_stream_costs_no_task_and_hears_every_notification(served: Served) -> None:
    app = served.app
    sessions = [await served.new_session() for _ in range(10)]
    # The first stream starts the replica's tasks (the stream watch's timer, the task ending
    # streams at shutdown, the one relaying notifications and keepalives; with Redis the bus's
    # reader and heartbeat); once the requests' own tasks are done, the others add none.
    streams = [await served.open_stream(sessions[0])]
    await eventually(lambda: app.drain.in_flight == 1, within=5)
    replica_wide = len(asyncio.all_tasks())
    streams += [await served.open_stream(session_id) for session_id in sessions[1:]]
    await eventually(lambda: len(asyncio.all_tasks()) <= replica_wide, within=5)
    assert app.endpoint.legacy.stream_watch.watched == len(sessions)
    assert app.drain.in_flight == len(sessions)  # a stream is a request until it ends
    await app.endpoint.dispatcher.server.notify_tools_changed()
    for stream in streams:
        with anyio.fail_after(5):
            await stream.until(b"notifications/tools/list_changed")
    # Resumable: the event is stored under the stream's id, after its priming event.
    priming, changed = event_ids(streams[0].body)
    async with httpx.AsyncClient() as client:
        replay = await client.get(
            served.url,
            headers={
                **LEGACY,
                "accept": "text/event-stream",
                "mcp-session-id": sessions[0],
                "last-event-id": priming,
            },
        )
    assert replay.status_code == 200
    assert f"id: {changed}\n".encode() in replay.content
    assert b"notifications/tools/list_changed" in replay.content
    for stream in streams:
        stream.close()


async def test_a_client_leaving_frees_its_stream(served: Served) -> None:
    app = served.app
    sessions = [await served.new_session() for _ in range(20)]
    for _ in range(2):  # the second round: every session's stream was released by the first
        streams = [await served.open_stream(session_id) for session_id in sessions]
        for stream in streams:
            stream.close()
        await eventually(lambda: app.endpoint.legacy.stream_watch.watched == 0, within=5)
        await eventually(lambda: app.drain.in_flight == 0, within=5)
        assert len(app.endpoint.legacy.standalone) == 0


async def test_keepalives_flow(served: Served) -> None:
    served.app.endpoint.legacy.standalone.keepalive = 0.2
    stream = await served.open_stream(await served.new_session())
    with anyio.fail_after(5):
        await stream.until(b": keep-alive", count=3)
    stream.close()


async def test_a_stream_whose_session_ends_gives_its_connection_back_to_http(served: Served) -> None:
    session_id = await served.new_session()
    stream = await served.open_stream(session_id)
    async with httpx.AsyncClient() as client:
        deleted = await client.delete(served.url, headers={**LEGACY, "mcp-session-id": session_id})
    assert deleted.status_code == 200
    await stream.ended()
    # The same connection serves the next request, as after any response.
    body = rpc("initialize", INIT)
    stream.writer.write(
        b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Accept: application/json, text/event-stream\r\nContent-Length: %d\r\n\r\n%b" % (len(body), body)
    )
    with anyio.fail_after(5):
        head = await stream.reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"mcp-session-id" in head.lower()
    stream.close()
    await eventually(lambda: served.app.drain.in_flight == 0, within=5)


async def test_the_drain_ends_streams_with_a_retry_hint(served: Served) -> None:
    app = served.app
    streams = [await served.open_stream(await served.new_session()) for _ in range(3)]
    app.begin_drain()
    for stream in streams:
        await stream.ended()
        assert b"retry: 1000\n\n\r\n0\r\n\r\n" in stream.body
    assert await app.drain.wait_idle(5)
    for stream in streams:
        stream.close()


async def test_a_drained_stream_gives_its_connection_back_for_one_answer_that_says_close(
    served: Served,
) -> None:
    # The stream's head promised keep-alive: a proxy takes the connection back after the last
    # chunk and may send its next request on it at once, so it is answered, saying close.
    stream = await served.open_stream(await served.new_session())
    served.close_after_response()
    served.app.begin_drain()
    await stream.ended()
    stream.writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    with anyio.fail_after(5):
        answer = await stream.reader.read()  # to EOF: closed after this answer
    stream.close()
    assert answer.startswith(b"HTTP/1.1 200"), answer
    assert b"connection: close" in answer.lower()


async def test_a_server_that_exits_ends_open_streams_and_closes_their_connections() -> None:
    app = build_http_app(MCPServer("detached"), load_settings({"auth": "none"}))
    async with app.endpoint.dispatcher.server.lifespan():
        serving = serve_in_process(app, CoalescingHttpToolsProtocol)
        served = Served(app, await anext(serving))
        stream = await served.open_stream(await served.new_session())
        with pytest.raises(StopAsyncIteration):
            await anext(serving)  # uvicorn's shutdown: every connection is asked to end
        await stream.ended()
        with anyio.fail_after(5):
            assert await stream.reader.read() == b""  # and closed
        stream.close()
