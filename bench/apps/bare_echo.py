"""The ceiling: a bare uvicorn ASGI app that answers MCP echo calls with no MCP machinery.

    python bench/apps/bare_echo.py --port 8000
    python bench/apps/bare_echo.py --port 8000 --http held   # on mcpserve's HTTP protocol

Reads the body, parses it with orjson and answers: `tools/call` -> a result echoing
`params.arguments.text` (the same shape the SDK returns for a `str` tool); `initialize` -> a
minimal InitializeResult plus a fresh `Mcp-Session-Id` (nothing is stored); notifications -> 202;
any other request -> an empty result. Responses carry Content-Length. No header validation, no
sessions, no schema checks: an upper bound for what a Python MCP server on uvicorn can do.
uvloop + httptools, one worker, no access log.
"""

from __future__ import annotations

import argparse
import uuid
from typing import Any

import orjson
import uvicorn
from starlette.types import Receive, Scope, Send

MODERN_VERSION_KEY = "io.modelcontextprotocol/protocolVersion"
JSON_HEADERS = [(b"content-type", b"application/json")]
INIT_RESULT = {
    "protocolVersion": "2025-11-25",
    "capabilities": {"tools": {"listChanged": False}},
    "serverInfo": {"name": "bare-echo", "version": "0"},
}


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _respond(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    if scope["method"] != "POST":
        await _respond(send, 405, b"", [(b"allow", b"POST")])
        return
    try:
        message: Any = orjson.loads(await _read_body(receive))
        method = message["method"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        error = {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "Parse error"}}
        await _respond(send, 400, orjson.dumps(error), JSON_HEADERS)
        return
    if "id" not in message:
        await _respond(send, 202, b"", [])
        return
    headers = JSON_HEADERS
    result: dict[str, Any]
    if method == "tools/call":
        text = message["params"]["arguments"]["text"]
        result = {
            "content": [{"type": "text", "text": text}],
            "structuredContent": {"result": text},
            "isError": False,
        }
        if MODERN_VERSION_KEY in message["params"].get("_meta", {}):
            result["resultType"] = "complete"
    elif method == "initialize":
        result = INIT_RESULT
        headers = [*JSON_HEADERS, (b"mcp-session-id", uuid.uuid4().hex.encode())]
    else:
        result = {}
    body = orjson.dumps({"jsonrpc": "2.0", "id": message["id"], "result": result})
    await _respond(send, 200, body, headers)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--http",
        choices=["httptools", "held"],
        default="httptools",
        help="held: mcpserve's httptools protocol, a response's head and body in one write",
    )
    args = parser.parse_args()
    http: Any = "httptools"
    if args.http == "held":
        from mcpserve.transports.http.protocol import CoalescingHttpToolsProtocol  # noqa: PLC0415

        http = CoalescingHttpToolsProtocol
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        loop="uvloop",
        http=http,
        workers=1,
        access_log=False,
        log_level="warning",
        lifespan="on",
    )


if __name__ == "__main__":
    main()
