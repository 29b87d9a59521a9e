"""A 2026-07-28 POST: stateless, validated per request, answered on its own response.

On the hot path: :meth:`ModernPost.post` is a plain function returning the next step's
awaitable, so it adds no coroutine level (see docs/architecture.md, "Where we depart").
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from mcpserve.auth.gate import AuthGate
from mcpserve.errors import InvalidParams, ProtocolError
from mcpserve.principal import Principal
from mcpserve.protocol import jsonrpc
from mcpserve.protocol.envelope import CLIENT_CAPABILITIES_KEY, PROTOCOL_VERSION_KEY, read_request_meta
from mcpserve.server.call import Call
from mcpserve.transports.http.calls import CallRunner, without_credentials
from mcpserve.transports.http.negotiation import check_modern_headers
from mcpserve.transports.http.refusals import forbidden, refuse, refuse_access
from mcpserve.transports.http.stream import ResponseStream, Send, json_response

__all__ = ["ModernPost"]


class ModernPost:
    """Serves one decoded 2026-07-28 message."""

    __slots__ = ("_auth", "_keepalive", "_run", "_server")

    def __init__(self, runner: CallRunner, auth: AuthGate | None, keepalive: float) -> None:
        self._run = runner.run
        self._server = runner.dispatcher.server
        self._auth = auth
        self._keepalive = keepalive

    def post(
        self,
        headers: dict[str, str],
        message: jsonrpc.Message,
        receive: Any,
        send: Send,
        principal: Principal | None,
        limits: list[tuple[bytes, bytes]],
    ) -> Awaitable[Any]:
        if not isinstance(message, jsonrpc.Request):
            # Notifications need no answer; responses have nothing to answer in this era.
            return json_response(send, 202, None, [])
        # Served while draining too: stateless, so the closed listener and Connection: close
        # hand the next request to another replica, and no 503 reaches a proxy's client.
        try:
            call = self._call(headers, message, principal)
        except ProtocolError as exc:
            return refuse(send, exc, message.id, "modern", limits)
        if self._auth is not None:
            denied = forbidden(self._auth, self._server, call)
            if denied is not None:
                return refuse_access(self._auth, send, denied, message.id)
        stream = ResponseStream(send, limits, keepalive=self._keepalive)
        return self._run(call, stream, receive)

    def _call(self, headers: dict[str, str], message: jsonrpc.Request, principal: Principal | None) -> Call:
        params = message.params
        meta = params.get("_meta")
        if (
            not isinstance(meta, dict)
            or PROTOCOL_VERSION_KEY not in meta
            or CLIENT_CAPABILITIES_KEY not in meta
        ):
            read_request_meta(params)  # raises the precise -32602
            raise InvalidParams("Missing params._meta")  # pragma: no cover - read_request_meta raised
        schema = None
        if message.method == "tools/call" and isinstance(params.get("name"), str):
            tool = self._server.registered_tool(params["name"])
            schema = tool.definition["inputSchema"] if tool else None
        check_modern_headers(headers, message.method, params, schema)
        return Call.modern(
            message, read_request_meta(params), headers=without_credentials(headers), principal=principal
        )
