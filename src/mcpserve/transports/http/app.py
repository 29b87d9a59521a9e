"""The HTTP application: routes the MCP endpoint and the health route, nothing else."""

from __future__ import annotations

from typing import Any

import orjson

from mcpserve.transports.http.endpoint import McpEndpoint
from mcpserve.transports.http.stream import Send, json_response

__all__ = ["HttpApp"]


class HttpApp:
    """A minimal ASGI router: the MCP endpoint stays on the hot path without framework layers."""

    def __init__(self, endpoint: McpEndpoint, path: str) -> None:
        self.endpoint = endpoint
        self.path = path

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == self.path or path == self.path + "/":
            await self.endpoint(scope, receive, send)
        elif path == "/health":
            await json_response(send, 200, {"status": "ok"}, [])
        else:
            body = orjson.dumps({"error": "not found"})
            await send(
                {
                    "type": "http.response.start",
                    "status": 404,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body})

    async def _lifespan(self, receive: Any, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.endpoint.dispatcher.closing.set()
                await send({"type": "lifespan.shutdown.complete"})
                return
