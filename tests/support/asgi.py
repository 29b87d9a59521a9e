"""Drive an ASGI app in-process: one request in, every response message captured."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import orjson

MODERN_HEADERS = {
    "content-type": "application/json",
    "accept": "application/json, text/event-stream",
    "mcp-protocol-version": "2026-07-28",
}
META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
}


@dataclass
class Reply:
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    done: anyio.Event = field(default_factory=anyio.Event)
    changed: anyio.Event = field(default_factory=anyio.Event)

    async def wait_for(self, fragment: bytes) -> None:
        """Wait until the body so far contains ``fragment`` (woken by each message the app sends)."""
        while fragment not in self.body:
            self.changed = anyio.Event()
            await self.changed.wait()

    def json(self) -> Any:
        return orjson.loads(self.body)

    def events(self) -> list[Any]:
        """The JSON payloads of an SSE body (priming events with empty data are skipped)."""
        found = []
        for block in self.body.decode().split("\n\n"):
            data = [line[6:] for line in block.split("\n") if line.startswith("data: ")]
            if data and data[0]:
                found.append(orjson.loads(data[0]))
        return found


def _scope(method: str, path: str, headers: dict[str, str], client: str) -> dict[str, Any]:
    merged = {"host": "127.0.0.1:8000", **headers}
    path, _, query = path.partition("?")
    return {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": query.encode(),
        "headers": [(k.lower().encode(), v.encode()) for k, v in merged.items()],
        "client": (client, 50000),
    }


@asynccontextmanager
async def open_request(
    app: Any,
    method: str,
    *,
    path: str = "/mcp",
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    client: str = "127.0.0.1",
    chunk_size: int | None = None,
) -> AsyncIterator[Reply]:
    """Start a request; the reply fills in as the app sends. Leaving the block disconnects.

    ``chunk_size`` delivers the body in pieces of that size, as a server does for large bodies.
    """
    reply = Reply()
    disconnect = anyio.Event()
    step = chunk_size or max(len(body), 1)
    pieces = [body[i : i + step] for i in range(0, len(body), step)] or [b""]

    async def receive() -> dict[str, Any]:
        if pieces:
            piece = pieces.pop(0)
            return {"type": "http.request", "body": piece, "more_body": bool(pieces)}
        await disconnect.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            reply.status = message["status"]
            reply.headers = {k.decode(): v.decode() for k, v in message["headers"]}
        else:
            reply.body += message.get("body", b"")
            if not message.get("more_body"):
                reply.done.set()
        reply.changed.set()

    async with anyio.create_task_group() as group:
        group.start_soon(app, _scope(method, path, headers or {}, client), receive, send)
        try:
            yield reply
        finally:
            disconnect.set()


async def request(app: Any, method: str, **options: Any) -> Reply:
    async with open_request(app, method, **options) as reply:
        with anyio.fail_after(5):
            await reply.done.wait()
    return reply


def rpc(method: str, params: dict[str, Any] | None = None, request_id: int | None = 1) -> bytes:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params or {}}
    if request_id is not None:
        message["id"] = request_id
    return orjson.dumps(message)
