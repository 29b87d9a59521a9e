"""A drain closes the listener without resetting the connections waiting in its backlog.

The kernel completes a client's connection before the server accepts it; closing the listening
socket resets every connection still in that queue, request and all. A proxy that had sent a
POST on one answers its client 502 (nginx: "recv() failed (104: Connection reset by peer) while
reading response header from upstream"), since it cannot know whether the POST ran.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from pathlib import Path
from typing import Any

import pytest

from mcpserve.config import load_settings
from mcpserve.transports.http.serve import _config, _Server, _stop_accepting
from mcpserve.transports.http.tls import ReloadingTls
from tests.deploy.certs import TestCA
from tests.support.polling import eventually

pytestmark = pytest.mark.anyio
CLIENTS = 8
REQUEST = b"POST /mcp HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}"


async def hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    assert scope["type"] == "http"
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


def read_answer(connection: socket.socket) -> bytes:
    """The response to the one request sent (content-length 2); the connection may stay open."""
    connection.settimeout(10)
    received = b""
    with connection:
        while not received.endswith(b"\r\n\r\nok"):
            chunk = connection.recv(4096)
            if not chunk:
                break
            received += chunk
    return received


def request_over_tls(connection: socket.socket, context: ssl.SSLContext) -> bytes:
    """Handshake (the server takes its side once the drain accepts the connection), ask, read."""
    connection.settimeout(10)
    secure = context.wrap_socket(connection, server_hostname="localhost")
    secure.sendall(REQUEST)
    return read_answer(secure)


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
async def test_connections_waiting_in_the_backlog_are_answered_not_reset(tls: bool, tmp_path: Path) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    address = listener.getsockname()
    ca = TestCA(tmp_path)
    issued = ca.issue("server")
    reloading = ReloadingTls(issued.cert, issued.key) if tls else None
    config = _config(hello, load_settings({"auth": "none"}), address[1], lifespan="off", tls=reloading)
    server = _Server(config)
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    await eventually(lambda: server.started, within=10)

    loop = asyncio.get_running_loop()
    clients = []
    for _ in range(CLIENTS):  # the loop does not run until the drain: none of these is accepted
        client = socket.create_connection(address)
        if tls:  # the client's thread starts now; its handshake waits for the server's side
            clients.append(loop.run_in_executor(None, request_over_tls, client, ca.client_context()))
        else:
            client.sendall(REQUEST)
            clients.append(loop.run_in_executor(None, read_answer, client))
    await _stop_accepting(server, listener)

    for answer in await asyncio.gather(*clients):
        assert answer.startswith(b"HTTP/1.1 200 ")
        assert answer.endswith(b"\r\n\r\nok")
    with pytest.raises(ConnectionRefusedError):  # and the listener is closed
        socket.create_connection(address).close()
    server.should_exit = True
    await asyncio.wait_for(serving, 10)
