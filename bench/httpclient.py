"""A minimal asyncio HTTP/1.1 keep-alive client and the MCP calls the harness makes with it.

Used to open 2025-era sessions (for wrk and for the session-creation and memory measurements) and
to probe that a server answers the echo tool correctly before it is measured. Kept to the standard
library (plus orjson) so the client costs little next to the servers it drives.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

LEGACY_VERSION = "2025-11-25"
MODERN_VERSION = "2026-07-28"
MODERN_META = {
    "io.modelcontextprotocol/protocolVersion": MODERN_VERSION,
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": {"name": "mcpserve-bench", "version": "0"},
}
BASE_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


class HttpError(Exception):
    """A transport failure or an unexpected answer."""


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The JSON-RPC message in the body (a JSON body, or the last `data:` event of an SSE body)."""
        if self.headers.get("content-type", "").startswith("text/event-stream"):
            data = [line[5:].strip() for line in self.body.splitlines() if line.startswith(b"data:")]
            messages = [orjson.loads(d) for d in data if d]
            if not messages:
                raise HttpError(f"SSE response without data: {self.body[:200]!r}")
            return messages[-1]
        return orjson.loads(self.body)


@dataclass
class Connection:
    """One keep-alive HTTP/1.1 connection to host:port (reconnects if the server closed it)."""

    host: str
    port: int
    timeout: float = 10.0
    _reader: asyncio.StreamReader | None = field(default=None, repr=False)
    _writer: asyncio.StreamWriter | None = field(default=None, repr=False)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
        self._reader = self._writer = None

    async def request(self, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> Response:
        try:
            return await asyncio.wait_for(self._request(method, path, headers, body), self.timeout)
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
            await self.close()
            raise HttpError(f"{method} {path}: {type(exc).__name__}: {exc}") from exc

    async def _request(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Response:
        if self._writer is None or self._writer.is_closing():
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None
        lines = [
            f"{method} {path} HTTP/1.1",
            f"Host: {self.host}:{self.port}",
            f"Content-Length: {len(body)}",
        ]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        await self._writer.drain()
        head = await self._reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        resp_headers: dict[str, str] = {}
        for line in header_lines:
            if ":" in line:
                key, value = line.split(":", 1)
                resp_headers[key.strip().lower()] = value.strip()
        if resp_headers.get("transfer-encoding", "").lower() == "chunked":
            data = await self._read_chunked()
        elif "content-length" in resp_headers:
            data = await self._reader.readexactly(int(resp_headers["content-length"]))
        elif status in (204, 304) or 100 <= status < 200:
            data = b""
        else:
            data = await self._reader.read()
            await self.close()
        if resp_headers.get("connection", "").lower() == "close":
            await self.close()
        return Response(status, resp_headers, data)

    async def _read_chunked(self) -> bytes:
        assert self._reader is not None
        chunks: list[bytes] = []
        while True:
            size = int((await self._reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                while (await self._reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                return b"".join(chunks)
            chunks.append(await self._reader.readexactly(size))
            await self._reader.readexactly(2)


async def open_session(conn: Connection, path: str = "/mcp") -> str:
    """initialize + notifications/initialized at 2025-11-25; returns the Mcp-Session-Id."""
    init = {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {
            "protocolVersion": LEGACY_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "mcpserve-bench", "version": "0"},
        },
    }
    resp = await conn.request("POST", path, BASE_HEADERS, orjson.dumps(init))
    session = resp.headers.get("mcp-session-id")
    if resp.status != 200 or not session:
        raise HttpError(f"initialize: HTTP {resp.status}, session id {session!r}: {resp.body[:300]!r}")
    message = resp.json()
    if "result" not in message:
        raise HttpError(f"initialize: no result: {resp.body[:300]!r}")
    headers = {**BASE_HEADERS, "Mcp-Session-Id": session, "MCP-Protocol-Version": LEGACY_VERSION}
    note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    resp = await conn.request("POST", path, headers, orjson.dumps(note))
    if resp.status not in (200, 202, 204):
        raise HttpError(f"notifications/initialized: HTTP {resp.status}: {resp.body[:300]!r}")
    return session


async def call_echo(
    conn: Connection, era: str, text: str, session: str | None = None, path: str = "/mcp", tool: str = "echo"
) -> str:
    """tools/call echo in `era` ("2026" or "2025"); returns the echoed text or raises HttpError."""
    params: dict[str, Any] = {"name": tool, "arguments": {"text": text}}
    headers = dict(BASE_HEADERS)
    if era == "2026":
        params["_meta"] = MODERN_META
        headers |= {"MCP-Protocol-Version": MODERN_VERSION, "Mcp-Method": "tools/call", "Mcp-Name": tool}
    else:
        if session is None:
            raise HttpError("a 2025-era call needs a session id")
        headers |= {"MCP-Protocol-Version": LEGACY_VERSION, "Mcp-Session-Id": session}
    body = orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params})
    resp = await conn.request("POST", path, headers, body)
    if resp.status != 200:
        raise HttpError(f"tools/call ({era}): HTTP {resp.status}: {resp.body[:300]!r}")
    result = resp.json().get("result") or {}
    content = result.get("content") or [{}]
    if result.get("isError") or content[0].get("text") != text:
        raise HttpError(f"tools/call ({era}): unexpected result: {resp.body[:300]!r}")
    return str(content[0]["text"])


@dataclass
class SessionRun:
    sessions: int
    failures: int
    seconds: float
    first_error: str | None

    @property
    def rate(self) -> float:
        return self.sessions / self.seconds if self.seconds > 0 else 0.0


async def create_sessions(
    host: str, port: int, count: int, concurrency: int, path: str = "/mcp"
) -> SessionRun:
    """Open `count` 2025-era sessions with `concurrency` keep-alive connections; time the whole run."""
    remaining = count
    failures = 0
    first_error: str | None = None

    async def worker() -> None:
        nonlocal remaining, failures, first_error
        conn = Connection(host, port)
        try:
            while remaining > 0:
                remaining -= 1
                try:
                    await open_session(conn, path)
                except HttpError as exc:
                    failures += 1
                    first_error = first_error or str(exc)
        finally:
            await conn.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, count)))))
    return SessionRun(count - failures, failures, time.perf_counter() - start, first_error)
