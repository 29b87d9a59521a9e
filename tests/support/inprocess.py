"""A uvicorn server in the test's own event loop, on a real loopback socket."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any


async def serve_in_process(app: Any, protocol: type[asyncio.Protocol]) -> AsyncIterator[int]:
    """Serve ``app`` with ``protocol`` (our httptools subclass); yields the port, then shuts down."""
    import uvicorn  # noqa: PLC0415 - only the tests that serve in-process need it

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, http=protocol, lifespan="off", log_config=None)
    config.load()
    server = uvicorn.Server(config)
    server.lifespan = config.lifespan_class(config)
    await server.startup(sockets=[sock])
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        await server.shutdown(sockets=[sock])
