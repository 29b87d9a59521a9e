"""The one error contract: codes and HTTP statuses per era, Retry-After, opaque internal errors."""

from __future__ import annotations

import logging

import orjson
import pytest

from mcpserve import errors
from mcpserve.errors import (
    HeaderMismatch,
    InternalError,
    InvalidParams,
    InvalidRequest,
    MethodNotFound,
    MissingClientCapability,
    NotAcceptable,
    ParseError,
    ProtocolError,
    ResourceNotFound,
    ServiceUnavailable,
    ToolError,
)
from mcpserve.server import failures
from mcpserve.server.content import ToolResult, to_content
from mcpserve.server.tools import Tool


def _leaf_classes() -> list[type[ProtocolError]]:
    return [getattr(errors, name) for name in errors.__all__ if _is_protocol_error(getattr(errors, name))]


def _is_protocol_error(value: object) -> bool:
    return isinstance(value, type) and issubclass(value, ProtocolError)


def test_codes_we_define_sit_outside_the_reserved_range_and_spec_codes_inside_it() -> None:
    for cls in _leaf_classes():
        if cls.code <= -31000 and cls.code > -32000:
            assert not failures.is_reserved_code(cls.code), cls
        else:
            assert failures.is_reserved_code(cls.code), cls
    assert not failures.is_reserved_code(ServiceUnavailable.code)


def test_era_specific_codes() -> None:
    missing = ResourceNotFound("test://nothing")
    capability = MissingClientCapability({"elicitation": {}})
    assert failures.code_for(missing, "modern") == -32602
    assert failures.code_for(missing, "legacy") == -32002
    assert failures.code_for(capability, "modern") == -32021
    assert failures.code_for(capability, "legacy") == -32602
    body = failures.error_response(7, missing, "legacy")
    assert body == {
        "jsonrpc": "2.0",
        "id": 7,
        "error": {
            "code": -32002,
            "message": "Resource not found: test://nothing",
            "data": {"uri": "test://nothing"},
        },
    }


@pytest.mark.parametrize(
    ("exc", "modern", "legacy"),
    [
        (ParseError("x"), 400, 400),
        (InvalidRequest("x"), 400, 400),
        (NotAcceptable("x"), 406, 406),
        (MethodNotFound("x"), 404, 200),
        (InvalidParams("x"), 400, 200),
        (HeaderMismatch("x"), 400, 200),
        (InternalError("x"), 500, 200),
        (ServiceUnavailable("x"), 503, 503),
    ],
)
def test_http_status_per_era(exc: ProtocolError, modern: int, legacy: int) -> None:
    assert failures.http_status(exc, "modern") == modern
    assert failures.http_status(exc, None) == modern
    assert failures.http_status(exc, "legacy") == legacy


def test_status_of_a_dispatcher_reply_follows_its_code() -> None:
    def reply(code: int) -> dict[str, object]:
        return {"jsonrpc": "2.0", "id": 1, "error": {"code": code, "message": "m"}}

    assert failures.response_status({"jsonrpc": "2.0", "id": 1, "result": {}}, "modern") == 200
    assert failures.response_status(reply(-32601), "modern") == 404
    assert failures.response_status(reply(-32603), "modern") == 500
    assert failures.response_status(reply(-31000), "modern") == 503
    assert failures.response_status(reply(-32600), "modern") == 400  # not a child's 406
    assert failures.response_status(reply(-32099), "modern") == 400  # a code no class claims
    assert failures.response_status(reply(-32601), "legacy") == 200
    assert failures.response_status(reply(-32002), "legacy") == 200
    assert failures.response_status(reply(-31000), "legacy") == 503


def test_statuses_include_classes_defined_elsewhere() -> None:
    class Teapot(ProtocolError):  # a policy's refusal defined outside errors.py
        code = -31999
        http_status = 418

    reply = {"jsonrpc": "2.0", "id": 1, "error": {"code": -31999, "message": "m"}}
    assert failures.response_status(reply, "modern") == 418
    assert failures.response_status(reply, "legacy") == 418


def test_retry_after_travels_as_a_header() -> None:
    assert failures.response_headers(ServiceUnavailable("busy", retry_after=5)) == [(b"retry-after", b"5")]
    assert failures.response_headers(ServiceUnavailable("busy")) == []
    assert failures.response_headers(InvalidParams("x")) == []


def test_unexpected_logs_the_trace_once_and_returns_only_an_id(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, "mcpserve.errors")
    try:
        raise RuntimeError("password=hunter2 in /srv/app/secret.py")
    except RuntimeError:
        error = failures.unexpected("tools/call")
    error_id = error.data["errorId"]
    wire = orjson.dumps(failures.error_response(3, error, "modern")).decode()
    assert "hunter2" not in wire and "/srv" not in wire and "RuntimeError" not in wire
    assert error.to_error() == {
        "code": -32603,
        "message": f"Internal error (error id {error_id})",
        "data": {"errorId": error_id},
    }
    [record] = caplog.records
    assert error_id in record.getMessage()
    assert record.exc_info is not None and "hunter2" in str(record.exc_info[1])


def test_encode_replaces_an_unencodable_response_with_an_internal_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    deep: object = []
    for _ in range(300):
        deep = [deep]
    body = orjson.loads(failures.encode({"jsonrpc": "2.0", "id": 9, "result": {"deep": deep}}))
    assert body["id"] == 9 and body["error"]["code"] == -32603
    assert "errorId" in body["error"]["data"]
    lone = orjson.loads(
        failures.encode({"jsonrpc": "2.0", "id": "a", "error": {"code": 1, "message": "\ud800"}})
    )
    assert lone["error"]["code"] == -32603
    with pytest.raises(ValueError, match="cannot be encoded"):
        failures.encode({"jsonrpc": "2.0", "method": "notifications/message", "params": {"x": 2**70}})
    assert (
        failures.encode({"jsonrpc": "2.0", "id": 1, "result": {}}) == b'{"jsonrpc":"2.0","id":1,"result":{}}'
    )


def test_check_finite_walks_containers() -> None:
    failures.check_finite({"a": [1.0, {"b": (2.5, "x", None)}]})
    for bad in (float("nan"), {"a": [float("inf")]}, [(-float("inf"),)]):
        with pytest.raises(ValueError, match="non-finite"):
            failures.check_finite(bad)


def test_content_block_dicts_must_carry_their_required_strings() -> None:
    good = [
        {"type": "text", "text": "t"},
        {"type": "image", "data": "aGk=", "mimeType": "image/png"},
        {"type": "resource", "resource": {"uri": "test://a", "text": "a"}},
        {"type": "resource", "resource": {"uri": "test://b", "blob": "aGk="}},
        {"type": "resource_link", "uri": "test://c", "name": "c"},
    ]
    for block in good:
        assert to_content(block) == [block]
    bad = [
        {"type": "text", "text": 1},
        {"type": "audio", "data": "aGk="},
        {"type": "resource", "resource": {"uri": "test://a"}},
        {"type": "resource", "resource": "test://a"},
        {"type": "resource_link", "uri": "test://c"},
    ]
    for block in bad:
        with pytest.raises(ValueError, match="content block needs"):
            to_content(block)


def test_structured_content_of_a_wrapped_output_must_be_wrapped() -> None:
    def count() -> int:
        return ToolResult(content=["3"], structured_content={"count": 3})  # type: ignore[return-value]

    with pytest.raises(ToolError, match="does not match its declared output type"):
        Tool.from_function(count).to_result(count())
    assert Tool.from_function(count).to_result(ToolResult(structured_content={"result": 3}))[
        "structuredContent"
    ] == {"result": 3}
