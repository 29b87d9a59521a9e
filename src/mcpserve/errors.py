"""Every exception mcpserve raises on purpose, in one tree.

::

    MCPServeError
    ├── ProtocolError                  a JSON-RPC error reply; carries code, HTTP status hint, data
    │   ├── ParseError                 -32700  body is not JSON
    │   ├── InvalidRequest             -32600  not a JSON-RPC 2.0 request (batch, bad id, ...)
    │   │   ├── NotAcceptable                  HTTP 406: Accept lacks a media type we answer with
    │   │   ├── UnsupportedMediaType           HTTP 415: the body is not application/json
    │   │   ├── PayloadTooLarge                HTTP 413: the body is over the configured limit
    │   │   ├── MethodNotAllowed               HTTP 405: an HTTP method /mcp does not serve here
    │   │   ├── NotFound                       HTTP 404: unknown session or Last-Event-ID
    │   │   ├── StreamConflict                 HTTP 409: a second GET stream for one session
    │   │   ├── OriginForbidden                HTTP 403: Origin not allowed
    │   │   └── MisdirectedRequest             HTTP 421: Host not allowed (DNS rebinding defence)
    │   ├── MethodNotFound             -32601  unknown, removed, or wrong-era method (HTTP 404)
    │   ├── InvalidParams              -32602  params that do not fit the method
    │   │   ├── InvalidRequestState            sealed requestState tampered, expired or foreign
    │   │   └── ResourceNotFound               -32602 in 2026-07-28, -32002 in the 2025 era
    │   ├── InternalError              -32603  a fault of ours; the message carries an error id
    │   ├── HeaderMismatch             -32020  HTTP headers disagree with the body
    │   ├── MissingClientCapability    -32021  the work needs a capability the client lacks
    │   ├── UnsupportedProtocolVersion -32022  version we do not serve
    │   ├── ServiceUnavailable         -31000  at capacity or shutting down (HTTP 503)
    │   │   └── StoreUnavailable               the shared state store (Redis) is unreachable
    │   ├── RateLimited                -31001  over a rate or concurrency limit (HTTP 429)
    │   ├── Unauthorized               -31010  no usable credential (HTTP 401)
    │   └── Forbidden                  -31011  credential lacks a scope the operation needs (HTTP 403)
    ├── ToolError                      raised by tool code: becomes an ``isError`` result
    └── ConfigError                    settings that cannot work; the CLI exits 2

Only :mod:`mcpserve.server.failures` turns these (and every unexpected exception) into wire
messages: JSON-RPC code, message, data and HTTP status per era. ``docs/errors.md`` lists them.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "MCPServeError",
    "ProtocolError",
    "ParseError",
    "InvalidRequest",
    "NotAcceptable",
    "UnsupportedMediaType",
    "PayloadTooLarge",
    "MethodNotAllowed",
    "NotFound",
    "StreamConflict",
    "OriginForbidden",
    "MisdirectedRequest",
    "MethodNotFound",
    "InvalidParams",
    "InvalidRequestState",
    "ResourceNotFound",
    "InternalError",
    "HeaderMismatch",
    "MissingClientCapability",
    "UnsupportedProtocolVersion",
    "ServiceUnavailable",
    "StoreUnavailable",
    "RateLimited",
    "Unauthorized",
    "Forbidden",
    "ToolError",
    "ConfigError",
    "StartupError",
]


class MCPServeError(Exception):
    """Root of every exception mcpserve raises deliberately."""


class ProtocolError(MCPServeError):
    """An error that is answered with a JSON-RPC error object."""

    code: ClassVar[int] = -32603
    http_status: int = 400  # per class; an instance may refine it (see Unauthorized)

    def __init__(self, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = data

    def to_error(self) -> dict[str, Any]:
        """The JSON-RPC ``error`` member for this exception."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


class ParseError(ProtocolError):
    code = -32700


class InvalidRequest(ProtocolError):
    code = -32600


class NotAcceptable(InvalidRequest):
    http_status = 406


class UnsupportedMediaType(InvalidRequest):
    http_status = 415


class PayloadTooLarge(InvalidRequest):
    http_status = 413


class MethodNotAllowed(InvalidRequest):
    http_status = 405


class NotFound(InvalidRequest):
    http_status = 404


class StreamConflict(InvalidRequest):
    http_status = 409


class OriginForbidden(InvalidRequest):
    http_status = 403


class MisdirectedRequest(InvalidRequest):
    http_status = 421


class MethodNotFound(ProtocolError):
    code = -32601
    http_status = 404


class InvalidParams(ProtocolError):
    code = -32602


class InvalidRequestState(InvalidParams):
    """A ``requestState`` that does not open: tampered, expired, or bound to someone else."""


class ResourceNotFound(InvalidParams):
    """No resource answers this URI. The 2025 era used -32002; dispatch picks the code per era."""

    legacy_code: ClassVar[int] = -32002

    def __init__(self, uri: str) -> None:
        super().__init__(f"Resource not found: {uri}", {"uri": uri})


class InternalError(ProtocolError):
    code = -32603
    http_status = 500


class HeaderMismatch(ProtocolError):
    code = -32020


class MissingClientCapability(ProtocolError):
    code = -32021

    def __init__(self, required: dict[str, Any], message: str | None = None) -> None:
        names = ", ".join(sorted(required))
        super().__init__(
            message or f"This request needs the client capability: {names}",
            {"requiredCapabilities": required},
        )


class UnsupportedProtocolVersion(ProtocolError):
    code = -32022

    def __init__(self, requested: Any, supported: list[str]) -> None:
        super().__init__(
            f"Unsupported protocol version: {requested!r}",
            {"supported": supported, "requested": requested},
        )


class ServiceUnavailable(ProtocolError):
    """The server cannot take this work now. Our own codes sit below -32768..-32000 (reserved)."""

    code = -31000
    http_status = 503

    def __init__(self, message: str, data: Any = None, *, retry_after: float | None = None) -> None:
        super().__init__(message, data)
        self.retry_after = retry_after  # seconds, sent as Retry-After


class StoreUnavailable(ServiceUnavailable):
    """The shared state store (Redis) did not answer. Raised by every Redis state operation; the
    cause is logged where it is caught, never sent (it may name hosts)."""

    def __init__(
        self, message: str = "Session state is unavailable; retry later", retry_after: float = 2
    ) -> None:
        super().__init__(message, retry_after=retry_after)


class RateLimited(ProtocolError):
    """Over a rate or concurrency limit. ``data.retryAfter`` is the wait in whole seconds."""

    code = -31001
    http_status = 429

    def __init__(self, retry_after: int, message: str | None = None) -> None:
        super().__init__(
            message or f"Rate limit exceeded; retry after {retry_after} s", {"retryAfter": retry_after}
        )
        self.retry_after = retry_after


class Unauthorized(ProtocolError):
    """No usable credential. ``challenge`` is the RFC 6750 ``error`` value, if a token was presented
    (``invalid_token``) or the request was malformed (``invalid_request``)."""

    code = -31010
    http_status = 401

    def __init__(self, message: str, challenge: str | None = None) -> None:
        super().__init__(message)
        self.challenge = challenge
        if challenge == "invalid_request":
            # A malformed request is 400 (RFC 6750 s3.1): a 401 would start an authorization
            # flow that cannot fix a client bug.
            self.http_status = 400


class Forbidden(ProtocolError):
    """A valid credential without every scope the operation needs; ``scopes`` names all of them."""

    code = -31011
    http_status = 403

    def __init__(self, message: str, scopes: frozenset[str]) -> None:
        super().__init__(message, {"requiredScopes": sorted(scopes)})
        self.scopes = scopes


class ToolError(MCPServeError):
    """Raise from a tool to report a failure the model should see (an ``isError`` result)."""


class ConfigError(MCPServeError):
    """Settings that cannot work. ``variable`` names the setting so the operator can fix it."""

    def __init__(self, variable: str, message: str) -> None:
        super().__init__(f"{variable}: {message}")
        self.variable = variable


class StartupError(MCPServeError):
    """The application could not start (a startup hook failed); the log holds the traceback."""
