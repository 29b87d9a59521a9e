"""JSON-RPC 2.0 framing: bytes in, classified messages out, and reply builders.

Messages stay plain dicts on the hot path; the small slotted classes below only name what the
framing layer already validated (id type, method string, params object).
"""

from __future__ import annotations

from typing import Any, Final, NamedTuple

import orjson

from mcpserve.errors import InvalidRequest, ParseError, ProtocolError
from mcpserve.types import JSONObject, RequestId

__all__ = [
    "Request",
    "Notification",
    "Response",
    "Message",
    "decode",
    "parse_message",
    "result_response",
    "error_response",
    "error_from",
    "notification",
    "request",
    "request_id_of",
    "as_request_id",
]

VERSION: Final = "2.0"


# Named tuples, not frozen dataclasses: as immutable, and built in a third of the time (a frozen
# dataclass sets each field through object.__setattr__), once per message on the hot path.
class Request(NamedTuple):
    id: RequestId
    method: str
    params: JSONObject


class Notification(NamedTuple):
    method: str
    params: JSONObject


class Response(NamedTuple):
    """A reply from the peer to one of our own requests (server→client in the 2025 era)."""

    id: RequestId
    result: JSONObject | None
    error: JSONObject | None


Message = Request | Notification | Response


def decode(data: bytes | str) -> Any:
    """Parse JSON text. Raises :class:`ParseError` for anything that is not JSON."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        raise ParseError("Parse error: the body is not valid JSON") from None


def is_request_id(value: object) -> bool:
    """A string or an integer: what MCP allows as a request id (and as a progress token)."""
    # bool is an int subclass but never a valid id; null ids are forbidden in MCP.
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def parse_message(obj: Any) -> Message:
    """Classify one decoded JSON value. Raises :class:`InvalidRequest` for malformed messages."""
    if isinstance(obj, list):
        raise InvalidRequest("Invalid request: batches are not supported; send one message per request")
    if not isinstance(obj, dict) or obj.get("jsonrpc") != VERSION:
        raise InvalidRequest('Invalid request: expected a JSON-RPC 2.0 object with "jsonrpc": "2.0"')
    method = obj.get("method")
    if method is not None:
        if not isinstance(method, str) or not method:
            raise InvalidRequest("Invalid request: method must be a non-empty string")
        params = obj.get("params")
        if params is None:
            params = {}
        elif not isinstance(params, dict):
            raise InvalidRequest("Invalid request: params must be an object")
        if "id" not in obj:
            return Notification(method, params)
        request_id = obj["id"]
        if not is_request_id(request_id):
            raise InvalidRequest("Invalid request: id must be a string or an integer")
        return Request(request_id, method, params)
    if "id" in obj and is_request_id(obj["id"]):
        result, error = obj.get("result"), obj.get("error")
        if isinstance(result, dict) != isinstance(error, dict):
            return Response(obj["id"], result if isinstance(result, dict) else None, error)
    raise InvalidRequest("Invalid request: not a request, notification or response")


def result_response(request_id: RequestId, result: JSONObject) -> JSONObject:
    return {"jsonrpc": VERSION, "id": request_id, "result": result}


def error_response(request_id: RequestId | None, error: JSONObject) -> JSONObject:
    return {"jsonrpc": VERSION, "id": request_id, "error": error}


def error_from(request_id: RequestId | None, exc: ProtocolError, code: int | None = None) -> JSONObject:
    body = exc.to_error()
    if code is not None:
        body["code"] = code
    return error_response(request_id, body)


def notification(method: str, params: JSONObject) -> JSONObject:
    return {"jsonrpc": VERSION, "method": method, "params": params}


def request(request_id: RequestId, method: str, params: JSONObject) -> JSONObject:
    return {"jsonrpc": VERSION, "id": request_id, "method": method, "params": params}


def request_id_of(obj: Any) -> RequestId | None:
    """Best-effort id of a message that failed validation, so its error can still be matched."""
    if isinstance(obj, dict) and is_request_id(obj.get("id")):
        return obj["id"]  # type: ignore[no-any-return]
    return None


def as_request_id(value: object) -> RequestId | None:
    """``value`` if it can be a request id (a client-supplied reference, e.g. in a cancellation)."""
    return value if is_request_id(value) else None  # type: ignore[return-value]
