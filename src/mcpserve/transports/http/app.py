"""The HTTP application: routes the MCP endpoint, the health route and static metadata documents
(RFC 9728 Protected Resource Metadata when authentication is on), nothing else."""

from __future__ import annotations

import logging
from typing import Any

import orjson

from mcpserve.transports.http.endpoint import McpEndpoint
from mcpserve.transports.http.stream import Send, json_response
from mcpserve.types import JSONObject

__all__ = ["HttpApp"]

logger = logging.getLogger("mcpserve.http")


class HttpApp:
    """A minimal ASGI router: the MCP endpoint stays on the hot path without framework layers."""

    def __init__(
        self, endpoint: McpEndpoint, path: str, documents: dict[str, JSONObject] | None = None
    ) -> None:
        self.endpoint = endpoint
        self.path = path
        self.documents = documents or {}

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
        elif path in self.documents and scope["method"] in {"GET", "HEAD"}:
            # Public by design (RFC 9728): clients fetch it before they hold a token, from any origin.
            await json_response(send, 200, self.documents[path], [(b"access-control-allow-origin", b"*")])
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
        message = await receive()
        if message["type"] != "lifespan.startup":  # pragma: no cover - ASGI servers start first
            return
        try:
            async with self.endpoint.dispatcher.server.lifespan():
                await send({"type": "lifespan.startup.complete"})
                while (await receive())["type"] != "lifespan.shutdown":  # pragma: no cover
                    pass
                self.endpoint.dispatcher.closing.set()
        except Exception as exc:
            logger.exception("application lifespan failed")
            failed = "lifespan.shutdown.failed" if self.endpoint.dispatcher.closing.is_set() else None
            await send({"type": failed or "lifespan.startup.failed", "message": type(exc).__name__})
            return
        await send({"type": "lifespan.shutdown.complete"})
