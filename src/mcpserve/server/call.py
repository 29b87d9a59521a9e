"""The per-request scope every handler runs in, and the transport seam it talks through.

A transport builds a :class:`Call` for each request (era, client facts, principal, session) and
supplies an :class:`Outbound` for what the server sends while that request runs.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Final, Protocol, runtime_checkable

from mcpserve.errors import ToolError
from mcpserve.principal import Principal
from mcpserve.protocol.envelope import RequestMeta, progress_token_of
from mcpserve.protocol.jsonrpc import Request
from mcpserve.protocol.session import LegacySession
from mcpserve.protocol.versions import Era
from mcpserve.types import JSONObject, RequestId

__all__ = ["Call", "Outbound", "ClosableOutbound", "NoOutbound"]


class Outbound(Protocol):
    """How the server reaches the client while a request runs.

    ``notify`` sends a request-scoped notification (progress, log message). ``request`` sends a
    server→client request and awaits the client's result; only the 2025 era has these, and a
    transport that cannot deliver one raises :class:`mcpserve.errors.ToolError`.
    """

    async def notify(self, method: str, params: JSONObject) -> None: ...

    async def request(self, method: str, params: JSONObject) -> JSONObject: ...


@runtime_checkable
class ClosableOutbound(Protocol):
    """An outbound whose connection may close mid-request and be resumed (2025-era HTTP).

    ``close_stream`` ends the HTTP response now; the request goes on and the client picks up
    the rest with ``Last-Event-ID`` (SEP-1699 polling). Transports without that don't offer it.
    """

    async def close_stream(self) -> None: ...


class NoOutbound:
    """Outbound for contexts with no channel back (tests, JSON-only replies)."""

    async def notify(self, method: str, params: JSONObject) -> None:
        return None

    async def request(self, method: str, params: JSONObject) -> JSONObject:
        raise ToolError(f"This connection cannot carry the server request {method!r}")


_NO_OUTBOUND: Final = NoOutbound()  # stateless: one serves every call


@dataclass(slots=True)
class Call:
    """Everything known about one request while it is handled."""

    id: RequestId
    method: str
    params: JSONObject
    era: Era
    protocol_version: str
    client_capabilities: JSONObject
    client_info: JSONObject | None = None
    log_level: str | None = None
    progress_token: str | int | None = None
    principal: Principal | None = None
    session: LegacySession | None = None
    outbound: Outbound = _NO_OUTBOUND
    headers: dict[str, str] | None = None
    # Multi-round-trip state (2026-07-28): answers the client sent on this round, answers
    # recorded in the sealed requestState from earlier rounds, and the tool's own state.
    input_responses: JSONObject | None = None
    answers: dict[str, Any] = field(default_factory=dict)
    app_state: Any = None
    # Set when the request is cancelled or times out; sync handlers in worker threads poll it.
    cancelled: bool = False
    # The task running the request, when the transport knows it (saves looking it up for a deadline).
    task: asyncio.Task[Any] | None = None

    @classmethod
    def modern(
        cls,
        request: Request,
        meta: RequestMeta,
        *,
        principal: Principal | None = None,
        outbound: Outbound = _NO_OUTBOUND,
        headers: dict[str, str] | None = None,
    ) -> Call:
        """A 2026-07-28 call: everything about the client comes from this request's envelope."""
        # Named keywords here rather than **extra, and every field passed on positionally, in field
        # order: built once per request, and keywords cost this call 0.25 us more (0.59 vs 0.33).
        return cls(
            request.id,
            request.method,
            request.params,
            "modern",
            meta.protocol_version,
            meta.client_capabilities,
            meta.client_info,
            meta.log_level,
            meta.progress_token,
            principal,
            None,
            outbound,
            headers,
        )

    @classmethod
    def legacy(cls, request: Request, session: LegacySession | None, **extra: Any) -> Call:
        """A 2025-era call: client facts come from the session (None before ``initialize``)."""
        return cls(
            request.id,
            request.method,
            request.params,
            "legacy",
            session.protocol_version if session else "",
            session.client_capabilities if session else {},
            client_info=session.client_info if session else None,
            log_level=session.log_level if session else None,
            progress_token=progress_token_of(request.params),
            session=session,
            **extra,
        )
