"""Rate-limit admission of ``tools/call``, for both eras: the one place the endpoint asks the
:class:`~mcpserve.server.admission.CallGate`.

A 2026-07-28 call is admitted from its headers, before its body is read; a 2025-era call once
its session is known (an unknown session costs no budget). Either way the caller is the
authenticated principal, else the client's address as the Host guard derives it.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from mcpserve.errors import HeaderMismatch, ProtocolError
from mcpserve.principal import Principal
from mcpserve.protocol import jsonrpc
from mcpserve.protocol.versions import MODERN
from mcpserve.server.admission import Admission, CallGate, caller_key
from mcpserve.transports.http.body import read_body
from mcpserve.transports.http.hostguard import HostGuard
from mcpserve.transports.http.negotiation import decode_header_value
from mcpserve.transports.http.refusals import refuse
from mcpserve.transports.http.stream import Send

__all__ = ["CallLimits", "declared_tool_call"]


def declared_tool_call(headers: dict[str, str]) -> tuple[bool, str | None]:
    """Whether a POST's headers announce a 2026-07-28 ``tools/call``, and of which tool.

    Such requests are limited before their body is read; the body is checked against these
    headers later, so a request cannot be counted as one thing and run as another.
    """
    if "mcp-session-id" in headers or headers.get("mcp-protocol-version", "").strip() != MODERN:
        return False, None
    try:
        if decode_header_value(headers.get("mcp-method", "")) != "tools/call":
            return False, None
        name = headers.get("mcp-name")
        return True, decode_header_value(name) if name is not None else None
    except HeaderMismatch:
        return False, None  # refused later with -32020, before anything runs


class CallLimits:
    """The rate-limit policy as the endpoint applies it."""

    __slots__ = ("_gate", "_guard")

    def __init__(self, gate: CallGate, guard: HostGuard) -> None:
        self._gate = gate
        self._guard = guard

    def admit(
        self, tool: str | None, principal: Principal | None, headers: dict[str, str], peer: str | None
    ) -> Awaitable[Admission]:
        """Admit one call of ``tool`` (None: not named) by this request's caller.

        A plain function returning the gate's awaitable; release the admission when the call ends.
        """
        address = self._guard.client_address(headers.get("x-forwarded-for"), peer)
        return self._gate.admit(caller_key(principal, address), tool)

    @staticmethod
    async def refuse_unread(admission: Admission, receive: Any, send: Send, max_body_bytes: int) -> None:
        """429 for a request limited from its headers; its body is read only to echo its id."""
        assert admission.error is not None
        try:
            body = await read_body(receive, max_body_bytes)
            if body is None:
                return
            request_id = jsonrpc.request_id_of(jsonrpc.decode(body))
        except ProtocolError:  # a body past the limit, or not JSON: no id to echo
            request_id = None
        await refuse(send, admission.error, request_id, headers=admission.headers())
