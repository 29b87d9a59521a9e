"""The connection limits' watchdog in-process, on a real uvicorn server and real sockets: heads
and bodies that arrive in pieces but in time are served, whatever the watchdog wakes up to."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from mcpserve.transports.http.connections import ConnectionLimits
from mcpserve.transports.http.protocol import limited
from tests.support.inprocess import serve_in_process

pytestmark = pytest.mark.anyio

TIMEOUT = 0.6


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    answer = b"%d" % len(body)
    headers = [(b"content-length", b"%d" % len(answer))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": answer})


async def _serve() -> AsyncIterator[int]:
    limits = ConnectionLimits(header_timeout=TIMEOUT, body_timeout=TIMEOUT, max_connections=16)
    async for port in serve_in_process(_app, limited(limits)):
        yield port


async def _answer(reader: asyncio.StreamReader) -> bytes:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    return head + await asyncio.wait_for(reader.readexactly(length), 10)


async def test_a_later_head_in_pieces_within_the_timeout_is_served_across_a_watchdog_wake_up() -> None:
    async for port in _serve():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        assert (await _answer(reader)).endswith(b"\r\n\r\n0")
        await asyncio.sleep(TIMEOUT / 2)  # the connection's first watchdog wakes while the next head arrives
        writer.write(b"GET / HTTP/1.1\r\n")
        await writer.drain()
        await asyncio.sleep(TIMEOUT / 2 + 0.1)  # past the first wake-up, inside this head's own time
        writer.write(b"host: x\r\n\r\n")
        assert (await _answer(reader)).startswith(b"HTTP/1.1 200 ")
        await asyncio.sleep(TIMEOUT)  # the watchdog wakes to nothing being read: the connection stays
        writer.write(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        assert (await _answer(reader)).startswith(b"HTTP/1.1 200 ")
        writer.close()


async def test_a_body_in_pieces_within_the_timeout_is_served() -> None:
    async for port in _serve():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 6\r\n\r\nab")
        await writer.drain()
        for piece in (b"cd", b"ef"):
            await asyncio.sleep(TIMEOUT / 4)
            writer.write(piece)
            await writer.drain()
        assert (await _answer(reader)).endswith(b"\r\n\r\n6")
        writer.close()


async def test_a_request_the_parser_refuses_is_answered_400_once() -> None:
    async for port in _serve():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"\x01\x02 not http\r\n")
        everything = await asyncio.wait_for(reader.read(), 10)
        writer.close()
    assert everything.startswith(b"HTTP/1.1 400 ")
    assert everything.count(b"HTTP/1.1") == 1
