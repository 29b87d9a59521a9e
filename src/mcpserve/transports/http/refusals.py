"""What the endpoint turns down itself, and how: one answer per refusal, mapped by ``failures``.

Shared by the adapter and both eras: Host/Origin, Accept and Content-Type, the drain, and the
authentication and authorization checks that run before a handler.
"""

from __future__ import annotations

from mcpserve.auth.gate import AuthGate
from mcpserve.errors import (
    Forbidden,
    InvalidRequest,
    MisdirectedRequest,
    NotAcceptable,
    OriginForbidden,
    ProtocolError,
    ServiceUnavailable,
    Unauthorized,
    UnsupportedMediaType,
)
from mcpserve.observability.requests import note_auth_failure
from mcpserve.protocol.versions import Era
from mcpserve.server import failures
from mcpserve.server.app import MCPServer
from mcpserve.server.call import Call
from mcpserve.transports.http.body import declares_more_than, too_large
from mcpserve.transports.http.negotiation import accepts, is_json
from mcpserve.transports.http.stream import Send, json_response
from mcpserve.types import RequestId

__all__ = [
    "GUARD_REFUSALS",
    "cut_off_error",
    "forbidden",
    "refuse",
    "refuse_access",
    "refuse_while_draining",
    "unacceptable",
]

GUARD_REFUSALS: dict[int, type[InvalidRequest]] = {421: MisdirectedRequest, 403: OriginForbidden}


async def refuse(
    send: Send,
    exc: ProtocolError,
    request_id: RequestId | None = None,
    era: Era | None = None,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """Answer a request the endpoint itself turns down (the mapping lives in ``failures``).

    ``headers`` (rate-limit state, an authentication challenge) come on top of the error's own.
    """
    extra = headers or []
    named = {name for name, _ in extra}
    own = [(name, value) for name, value in failures.response_headers(exc) if name not in named]
    await json_response(
        send,
        failures.http_status(exc, era),
        failures.error_response(request_id, exc, era),
        own + extra,
    )


def cut_off_error() -> ServiceUnavailable:
    # The drain deadline passed while the request ran: its work is abandoned, a retry elsewhere may succeed.
    return ServiceUnavailable(
        "Server shutting down: the request was stopped; retry on another replica", retry_after=2
    )


async def refuse_while_draining(send: Send, request_id: RequestId | None) -> None:
    # Shutdown has begun: another replica can take this at once.
    busy = ServiceUnavailable("Server is shutting down; retry on another replica", retry_after=2)
    await refuse(send, busy, request_id)


def unacceptable(headers: dict[str, str], max_body_bytes: int, limit_digits: int) -> ProtocolError | None:
    """Why a POST's headers rule it out before its body is read, if they do: Accept,
    Content-Type, or a Content-Length over the limit (``limit_digits``: the limit's digits)."""
    if not accepts(headers.get("accept", ""), "application/json", "text/event-stream"):
        return NotAcceptable("Not Acceptable: Accept must list application/json and text/event-stream")
    if not is_json(headers.get("content-type", "")):
        return UnsupportedMediaType("Content-Type must be application/json")
    # Lengths with fewer digits than the limit (every usual request) skip the parse.
    if len(headers.get("content-length", "")) >= limit_digits and declares_more_than(
        headers["content-length"], max_body_bytes
    ):
        return too_large(max_body_bytes)
    return None


async def refuse_access(
    auth: AuthGate | None, send: Send, exc: ProtocolError, request_id: RequestId | None = None
) -> None:
    """Answer an authentication or authorization failure (or an unreachable issuer)."""
    if auth is not None and isinstance(exc, Unauthorized | Forbidden):
        note_auth_failure(exc)
        await refuse(send, exc, request_id, headers=auth.challenge(exc))
    else:
        await refuse(send, exc, request_id)


def forbidden(auth: AuthGate | None, server: MCPServer, call: Call) -> Forbidden | None:
    """Refuse before the handler runs when the principal lacks the scopes this target needs."""
    if auth is None or call.principal is None:
        return None
    try:
        auth.authorize(call.principal, server.scopes_for(call.method, call.params))
    except Forbidden as exc:
        return exc
    return None
