"""Every failure to the wire, in one place: JSON-RPC code, message, data and HTTP status per era.

The dispatcher, the HTTP endpoint and the stdio transport all answer failures through this
module, so ``docs/errors.md`` has one source to agree with (``tests/test_error_docs.py`` checks).

Rules, in short:

* A :class:`ProtocolError` keeps its code and message, except where an era defines another code
  (-32002 for a missing resource in the 2025 era; no -32021 there, it predates that code).
* Anything else is a fault of ours: -32603 whose ``data.errorId`` names the log line holding the
  full traceback. Its message, type, path and traceback never reach the wire.
* HTTP status: 2026-07-28 maps every code to a status (-32601 → 404, -32603 → 500, ...). The 2025
  era answers method-level errors inside a 200 response, as its clients expect; framing errors
  (-32700, -32600) and our own refusal codes (-31xxx: capacity, rate limit, authentication) carry
  their HTTP status in both eras.
* Tool failures are results, not errors: ``isError: true`` with a message a model can act on.
"""

from __future__ import annotations

import logging
import math
import secrets
from typing import Any, Final

import orjson

from mcpserve.errors import (
    InternalError,
    InvalidParams,
    InvalidRequest,
    MissingClientCapability,
    ParseError,
    ProtocolError,
    ResourceNotFound,
)
from mcpserve.protocol import jsonrpc
from mcpserve.protocol.versions import Era
from mcpserve.types import JSONObject, RequestId

__all__ = [
    "code_for",
    "error_response",
    "http_status",
    "response_status",
    "response_headers",
    "unexpected",
    "error_result",
    "tool_failure_result",
    "timeout_result",
    "is_reserved_code",
    "check_finite",
    "encode",
]

logger = logging.getLogger("mcpserve.errors")

# JSON-RPC reserves -32768..-32000 for the protocol; codes we define must sit outside it.
_RESERVED: Final = range(-32768, -32000 + 1)
# Spec codes that still mean "this HTTP request was malformed" in the 2025 era.
_FRAMING_CODES: Final = frozenset({ParseError.code, InvalidRequest.code})


def is_reserved_code(code: int) -> bool:
    """Whether ``code`` lies in the range JSON-RPC and MCP keep for themselves."""
    return code in _RESERVED


def code_for(exc: ProtocolError, era: Era | None) -> int:
    """The JSON-RPC code ``exc`` is sent with in ``era`` (None: before an era is known)."""
    if era == "legacy":
        if isinstance(exc, ResourceNotFound):
            return exc.legacy_code
        if isinstance(exc, MissingClientCapability):
            return InvalidParams.code
    return exc.code


def error_response(request_id: RequestId | None, exc: ProtocolError, era: Era | None) -> JSONObject:
    """The complete JSON-RPC error response for ``exc``."""
    return jsonrpc.error_from(request_id, exc, code_for(exc, era))


def _all_classes() -> list[type[ProtocolError]]:
    """Every concrete ProtocolError class, parents before children (breadth first)."""
    found: list[type[ProtocolError]] = []
    queue: list[type[ProtocolError]] = ProtocolError.__subclasses__()
    while queue:
        cls = queue.pop(0)
        found.append(cls)
        queue.extend(cls.__subclasses__())
    return found


_status_by_code: dict[int, int] = {}


def _status_of_code(code: int) -> int:
    if code not in _status_by_code:
        # Built on first use so classes defined after this module (policies) are included; the
        # first class with a code sets its status, so -32600 stays 400 whatever its HTTP children.
        for cls in _all_classes():
            _status_by_code.setdefault(cls.code, cls.http_status)
    return _status_by_code.get(code, 400)


def _keeps_http_status(code: int) -> bool:
    return code in _FRAMING_CODES or not is_reserved_code(code)


def http_status(exc: ProtocolError, era: Era | None) -> int:
    """HTTP status for a refusal raised outside the dispatcher (framing, headers, policies)."""
    if era == "legacy" and not _keeps_http_status(code_for(exc, era)):
        return 200
    return exc.http_status


def response_status(response: JSONObject, era: Era) -> int:
    """HTTP status for a reply the dispatcher built: 200 for results, else per era and code."""
    error = response.get("error")
    if not isinstance(error, dict):
        return 200
    code: int = error["code"]
    if era == "legacy" and not _keeps_http_status(code):
        return 200
    return _status_of_code(code)


def response_headers(exc: ProtocolError) -> list[tuple[bytes, bytes]]:
    """Extra HTTP headers an error carries: ``Retry-After`` when it says when to come back."""
    retry_after = getattr(exc, "retry_after", None)
    if isinstance(retry_after, int | float) and retry_after >= 0:
        return [(b"retry-after", str(math.ceil(retry_after)).encode())]
    return []


def unexpected(where: str) -> InternalError:
    """Log the exception being handled once, under a fresh id, and return the opaque error naming it.

    Call from an ``except`` block. ``where`` is a short, non-secret label (method or tool name).
    """
    error_id = secrets.token_hex(8)
    logger.exception("internal error in %s (error id %s)", where, error_id)
    return InternalError(f"Internal error (error id {error_id})", {"errorId": error_id})


def error_result(message: str) -> JSONObject:
    """A ``CallToolResult`` reporting a failure the model can read."""
    return {"content": [{"type": "text", "text": message}], "isError": True}


def tool_failure_result(tool: str) -> JSONObject:
    """An unexpected exception inside a tool: logged under an id, reported without details."""
    error = unexpected(f"tool {tool}")
    return error_result(f"Tool {tool!r} failed: {error.message}")


def timeout_result(tool: str, seconds: float) -> JSONObject:
    logger.warning("tool %s timed out after %g s", tool, seconds)
    return error_result(f"Tool {tool!r} timed out after {seconds:g} s; the upstream did not answer in time")


def check_finite(value: Any) -> None:
    """Raise ValueError when a JSON-bound value holds NaN or an infinity (JSON has neither)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float):
            if not math.isfinite(item):
                raise ValueError("result holds a non-finite number (NaN or infinity)")
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)


def encode(message: JSONObject) -> bytes:
    """``message`` as JSON bytes; a response that cannot be encoded becomes -32603 for its id.

    orjson refuses what JSON cannot carry (lone surrogates, integers over 64 bits, nesting deeper
    than 255): a handler result holding such a value must not take the connection down.
    Notifications that cannot be encoded raise ``ValueError`` to the code that emitted them.
    """
    try:
        return orjson.dumps(message)
    except orjson.JSONEncodeError:
        if "result" not in message and "error" not in message:
            raise ValueError("message cannot be encoded as JSON") from None
        error = unexpected("encoding a response")
        return orjson.dumps(jsonrpc.error_response(jsonrpc.request_id_of(message), error.to_error()))
