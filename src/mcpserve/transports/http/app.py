"""The HTTP application: routes the MCP endpoint, the operational routes and static metadata
documents (RFC 9728 Protected Resource Metadata when authentication is on), nothing else."""

from __future__ import annotations

import logging
from typing import Any

from mcpserve.observability.logs import mask_text
from mcpserve.transports.http.cors import CorsPolicy
from mcpserve.transports.http.endpoint import McpEndpoint
from mcpserve.transports.http.landing import LandingPages, send_page, wants_html
from mcpserve.transports.http.ops import OPS_PATHS, OpsRoutes, is_admin_path
from mcpserve.transports.http.stream import Send, json_response
from mcpserve.types import JSONObject

__all__ = ["HttpApp"]

logger = logging.getLogger("mcpserve.http")


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


class HttpApp:
    """A minimal ASGI router: the MCP endpoint stays on the hot path without framework layers.

    The endpoint counts its requests in flight for the drain and reports each to the observer.
    """

    def __init__(
        self,
        endpoint: McpEndpoint,
        path: str,
        documents: dict[str, JSONObject] | None = None,
        *,
        ops: OpsRoutes,
        cors: CorsPolicy | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.path = path
        self.documents = documents or {}
        self.ops = ops
        self.drain = ops.drain  # the endpoint's too: one flag and one in-flight count
        self.cors = cors
        self.pages = LandingPages(path)
        self.startup_failure: str | None = None  # what a failed startup hook raised, for the last line

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == self.path or path == self.path + "/":
            if scope["method"] == "GET" and wants_html(scope):  # a browser: say what this is
                await send_page(send, 406, self.pages.endpoint, "GET")
            elif self.cors is None:  # the usual deployment: straight to the endpoint
                await self.endpoint(scope, receive, send)
            else:
                await self._mcp(scope, receive, send, self.cors)
        elif path in OPS_PATHS or is_admin_path(path):
            await self.ops(scope, send)
        elif path == "/" and scope["method"] in {"GET", "HEAD"}:
            await send_page(send, 200, self.pages.root, scope["method"])
        elif path in self.documents and scope["method"] in {"GET", "HEAD"}:
            # Public by design (RFC 9728): clients fetch it before they hold a token, from any origin.
            await json_response(send, 200, self.documents[path], [(b"access-control-allow-origin", b"*")])
        else:
            await json_response(send, 404, {"error": "not found"}, [])

    def begin_drain(self) -> None:
        """Shutdown has begun: fail readiness, refuse new work, end long-lived streams."""
        self.drain.stopping = True
        self.drain.draining = True
        self.endpoint.dispatcher.closing.set()

    async def _mcp(self, scope: dict[str, Any], receive: Any, send: Send, cors: CorsPolicy) -> None:
        """The endpoint behind a CORS policy: preflights answered here, allowed origins named."""
        cors_headers: list[tuple[bytes, bytes]] | None = None
        origin = _header(scope, b"origin")
        if origin is not None and scope["method"] == "OPTIONS":
            status, headers = cors.preflight(
                origin,
                _header(scope, b"access-control-request-method"),
                _header(scope, b"access-control-request-headers"),
            )
            await json_response(send, status, None, headers)
            return
        if origin is not None and cors.allows(origin):
            cors_headers = cors.response_headers(origin)
        await self.endpoint(scope, receive, send, cors_headers)

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
            self.startup_failure = mask_text(f"{type(exc).__name__}: {exc}")[:300]
            failed = "lifespan.shutdown.failed" if self.endpoint.dispatcher.closing.is_set() else None
            await send({"type": failed or "lifespan.startup.failed", "message": type(exc).__name__})
            return
        await send({"type": "lifespan.shutdown.complete"})
