"""The coalescing protocol on a real uvicorn server and real sockets: what leaves in one write,
and that nothing waits longer than its loop iteration."""

from __future__ import annotations

import asyncio
import socket
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from mcpserve.transports.http.protocol import CoalescingHttpToolsProtocol
from tests.support.inprocess import serve_in_process
from tests.support.polling import eventually

pytestmark = pytest.mark.anyio

App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]
WRITES: list[list[bytes]] = []  # what reached the real transport, one entry per write call
MADE: list[CoalescingHttpToolsProtocol] = []  # every connection's protocol, in order


class _Recorded(asyncio.Transport):
    """The real transport, with each write it is given noted in WRITES."""

    def __init__(self, transport: asyncio.Transport) -> None:
        super().__init__()
        self._transport = transport

    def write(self, data: Any) -> None:
        WRITES.append([bytes(data)])
        self._transport.write(data)

    def writelines(self, chunks: Any) -> None:
        WRITES.append([bytes(chunk) for chunk in chunks])
        self._transport.writelines(chunks)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def close(self) -> None:
        self._transport.close()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)


class _RecordingProtocol(CoalescingHttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        MADE.append(self)
        super().connection_made(_Recorded(transport))


async def _serve(app: App) -> AsyncIterator[int]:
    WRITES.clear()
    MADE.clear()
    async for port in serve_in_process(app, _RecordingProtocol):
        yield port


async def _request(port: int, extra: bytes = b"") -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\nhost: 127.0.0.1\r\n" + extra + b"\r\n")
    await writer.drain()
    return reader, writer


async def test_a_json_answer_leaves_in_one_write() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = b'{"ok":true}'
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async for port in _serve(app):
        reader, writer = await _request(port)
        head = await reader.readuntil(b"\r\n\r\n")
        body = await reader.readexactly(11)
        writer.close()
        assert head.startswith(b"HTTP/1.1 200")
        assert body == b'{"ok":true}'
        assert len(WRITES) == 1
        assert WRITES[0][0] == head
        assert b"".join(WRITES[0]) == head + body


async def test_a_head_without_a_body_yet_is_not_held_past_its_iteration() -> None:
    head_read = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await head_read.wait()  # the stream's first event comes only after the client saw the head
        await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async for port in _serve(app):
        reader, writer = await _request(port)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        head_read.set()
        first = await asyncio.wait_for(reader.readuntil(b"\n\n"), 10)
        writer.close()
        assert head.startswith(b"HTTP/1.1 200")
        assert first.endswith(b"data: 1\n\n")


async def test_a_large_body_is_sent_at_once_where_flow_control_sees_it() -> None:
    seen_when_sent: list[int] = []
    body = b"x" * (100 * 1024)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = [(b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        seen_when_sent.append(len(WRITES))  # before this task yields to the loop

    async for port in _serve(app):
        reader, writer = await _request(port)
        await reader.readuntil(b"\r\n\r\n")
        received = await reader.readexactly(len(body))
        writer.close()
        assert received == body
        assert seen_when_sent == [1]
        assert len(WRITES[0]) == 2  # head and body, one writev, the body not copied into the head


async def test_closing_the_connection_sends_what_is_held_first() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = [(b"content-length", b"4")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"done"})

    async for port in _serve(app):
        reader, writer = await _request(port, b"connection: close\r\n")
        everything = await asyncio.wait_for(reader.read(), 10)  # to EOF: uvicorn closed the connection
        writer.close()
        assert everything.startswith(b"HTTP/1.1 200")
        assert everything.endswith(b"\r\n\r\ndone")


def _drain_all() -> None:
    """What the drain does to every open connection when the listener closes."""
    for protocol in MADE:
        protocol.close_after_response()


def _gated_app(head: asyncio.Event, sent: asyncio.Event, body: asyncio.Event) -> App:
    """Writes its head once ``head`` is set, sets ``sent``, and its body once ``body`` is set."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await head.wait()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"4")]})
        sent.set()
        await body.wait()
        await send({"type": "http.response.body", "body": b"done"})

    return app


async def test_a_drain_during_a_response_keeps_the_connection_for_an_answer_that_says_close() -> None:
    # The head went out promising keep-alive: a proxy takes the connection back after the body
    # and may send its next request on it at once. Closing after the body would reset that
    # request, which the proxy cannot retry (a POST); it is answered, saying close.
    head, sent, body = asyncio.Event(), asyncio.Event(), asyncio.Event()
    head.set()
    async for port in _serve(_gated_app(head, sent, body)):
        reader, writer = await _request(port)
        await asyncio.wait_for(sent.wait(), 10)
        _drain_all()
        body.set()
        first = await asyncio.wait_for(reader.readuntil(b"done"), 10)
        writer.write(b"GET / HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        second = await asyncio.wait_for(reader.read(), 10)  # to EOF: closed after this answer
        writer.close()
        assert b"connection: close" not in first.lower()
        assert second.startswith(b"HTTP/1.1 200")
        assert b"connection: close" in second.lower()


async def test_a_drain_before_the_head_is_written_makes_it_say_close() -> None:
    head, sent, body = asyncio.Event(), asyncio.Event(), asyncio.Event()
    body.set()
    async for port in _serve(_gated_app(head, sent, body)):
        reader, writer = await _request(port)
        await eventually(lambda: bool(MADE and MADE[0].cycle), within=10)  # the app is running
        _drain_all()
        head.set()
        answer = await asyncio.wait_for(reader.read(), 10)  # to EOF: closed after this answer
        writer.close()
        assert answer.startswith(b"HTTP/1.1 200")
        assert b"connection: close" in answer.lower()
        assert answer.endswith(b"done")


async def _connected() -> tuple[
    asyncio.Transport, tuple[asyncio.StreamReader, asyncio.StreamWriter], asyncio.Server
]:
    """A real client transport, connected to a server whose side the test reads."""
    accepted: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accepted.put((reader, writer))

    server = await asyncio.start_server(on_client, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
    return transport, await accepted.get(), server


async def test_the_held_transport_reports_and_delegates_like_the_real_one() -> None:
    from mcpserve.transports.http.protocol import _HeldWrites, _iteration_for  # noqa: PLC0415

    real, (peer, peer_writer), server = await _connected()
    held = _HeldWrites(real, _iteration_for(asyncio.get_running_loop()))
    held.write(bytearray(b"abc"))
    held.writelines([b"de", b"f"])
    assert held.get_write_buffer_size() == 6  # held bytes count: flow control sees them
    assert held.get_extra_info("peername") == real.get_extra_info("peername")
    assert held.get_protocol() is real.get_protocol()
    held.pause_reading()
    assert not held.is_reading()
    held.resume_reading()
    assert held.is_reading()
    assert await asyncio.wait_for(peer.readexactly(6), 10) == b"abcdef"  # one iteration later
    held.write(b"never sent")
    held.abort()  # drops what it holds and the connection
    assert held.is_closing()
    assert held.get_write_buffer_size() == 0
    assert await asyncio.wait_for(peer.read(), 10) == b""
    held.write(b"after the end")
    held.flush()  # nothing to deliver to: dropped, no error
    peer_writer.close()
    server.close()
    await server.wait_closed()


def test_a_websocket_upgrade_is_answered_as_plain_http() -> None:
    from tests.support.servers import running_server  # noqa: PLC0415

    request = (
        b"GET /mcp HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: Upgrade\r\nupgrade: websocket\r\n"
        b"sec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    with running_server() as url:
        host, port = url.split("//")[1].split("/")[0].split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(request)
            answer = b""
            while b"\r\n\r\n" not in answer:
                answer += sock.recv(4096)
    status = answer.split(b"\r\n", 1)[0]
    assert status == b"HTTP/1.1 406 Not Acceptable"  # the endpoint's answer to a GET without SSE in Accept


def test_a_closed_loop_is_not_kept_alive_by_its_held_writes() -> None:
    import gc  # noqa: PLC0415

    from mcpserve.transports.http.protocol import _ITERATIONS, _iteration_for  # noqa: PLC0415

    loop = asyncio.new_event_loop()
    _iteration_for(loop)
    assert loop in _ITERATIONS
    alive = weakref.ref(loop)
    loop.close()
    del loop
    gc.collect()
    assert alive() is None


async def test_a_lone_response_leaves_as_it_completes_and_one_among_others_waits_for_the_iteration() -> None:
    written_at_completion: dict[str, int] = {}
    holding, release = asyncio.Event(), asyncio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["path"] == "/hold":
            holding.set()
            await release.wait()  # in flight while another request completes
        before = len(WRITES)
        headers = [(b"content-length", b"2")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})
        written_at_completion[scope["path"]] = len(WRITES) - before  # before this task yields

    async for port in _serve(app):
        reader, writer = await _request(port)  # GET /, alone on the server
        assert (await asyncio.wait_for(reader.read(1024), 10)).endswith(b"ok")
        assert written_at_completion.pop("/") == 1  # sent as it completed: nothing to batch with
        held_reader, held_writer = await asyncio.open_connection("127.0.0.1", port)
        held_writer.write(b"GET /hold HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        await held_writer.drain()
        await asyncio.wait_for(holding.wait(), 10)
        writer.write(b"GET / HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        await writer.drain()
        assert (await asyncio.wait_for(reader.read(1024), 10)).endswith(b"ok")  # end of iteration
        assert written_at_completion.pop("/") == 0  # held: /hold was in flight
        release.set()
        assert (await asyncio.wait_for(held_reader.read(1024), 10)).endswith(b"ok")
        writer.close()
        held_writer.close()
