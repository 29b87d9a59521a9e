"""JSON-RPC 2.0 framing: classification of incoming messages and the reply builders."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcpserve.errors import InvalidParams, InvalidRequest, ParseError
from mcpserve.protocol import jsonrpc
from mcpserve.server.failures import encode


def _parse(data: bytes | str) -> jsonrpc.Message:
    """What the transports do with a message's bytes: decode, then classify."""
    return jsonrpc.parse_message(jsonrpc.decode(data))


def _same(message: jsonrpc.Message, expected: jsonrpc.Message) -> bool:
    # Messages are named tuples: equal fields alone would let a Response pass for a Request.
    return type(message) is type(expected) and message == expected


def test_request_is_classified_with_id_method_and_params() -> None:
    message = _parse(b'{"jsonrpc": "2.0", "id": 7, "method": "tools/list", "params": {"cursor": "x"}}')
    assert _same(message, jsonrpc.Request(7, "tools/list", {"cursor": "x"}))


def test_request_without_params_gets_an_empty_object() -> None:
    assert _same(_parse('{"jsonrpc": "2.0", "id": "a", "method": "ping"}'), jsonrpc.Request("a", "ping", {}))
    without = jsonrpc.parse_message({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": None})
    assert _same(without, jsonrpc.Request(1, "ping", {}))


def test_message_without_id_is_a_notification() -> None:
    message = jsonrpc.parse_message({"jsonrpc": "2.0", "method": "notifications/initialized"})
    assert _same(message, jsonrpc.Notification("notifications/initialized", {}))


def test_response_to_our_request_is_classified_as_response() -> None:
    ok = jsonrpc.parse_message({"jsonrpc": "2.0", "id": "s-1", "result": {"action": "accept"}})
    assert _same(ok, jsonrpc.Response("s-1", {"action": "accept"}, None))
    failed = jsonrpc.parse_message({"jsonrpc": "2.0", "id": 3, "error": {"code": -1, "message": "no"}})
    assert _same(failed, jsonrpc.Response(3, None, {"code": -1, "message": "no"}))


def test_batch_array_is_an_invalid_request() -> None:
    with pytest.raises(InvalidRequest, match="batches are not supported") as caught:
        _parse(b'[{"jsonrpc": "2.0", "id": 1, "method": "ping"}]')
    assert caught.value.code == -32600


def test_invalid_json_is_a_parse_error() -> None:
    with pytest.raises(ParseError) as caught:
        _parse(b"{not json")
    assert caught.value.code == -32700
    with pytest.raises(ParseError):
        jsonrpc.decode(b"\xff\xfe")


@pytest.mark.parametrize(
    "message",
    [
        "just a string",
        42,
        None,
        {"id": 1, "method": "ping"},
        {"jsonrpc": "1.0", "id": 1, "method": "ping"},
        {"jsonrpc": "2.0", "id": 1, "method": ""},
        {"jsonrpc": "2.0", "id": 1, "method": 5},
        {"jsonrpc": "2.0", "id": 1, "method": "x", "params": [1, 2]},
        {"jsonrpc": "2.0", "id": 1, "method": "x", "params": "p"},
        {"jsonrpc": "2.0", "id": None, "method": "x"},
        {"jsonrpc": "2.0", "id": True, "method": "x"},
        {"jsonrpc": "2.0", "id": 1.5, "method": "x"},
        {"jsonrpc": "2.0", "id": [1], "method": "x"},
        {"jsonrpc": "2.0", "id": 1},
        {"jsonrpc": "2.0", "id": 1, "result": {}, "error": {"code": 1, "message": "m"}},
        {"jsonrpc": "2.0", "id": None, "result": {}},
        {"jsonrpc": "2.0", "id": 1, "result": "not an object"},
        {"jsonrpc": "2.0", "result": {}},
    ],
)
def test_malformed_messages_are_invalid_requests(message: Any) -> None:
    with pytest.raises(InvalidRequest) as caught:
        jsonrpc.parse_message(message)
    assert caught.value.code == -32600
    assert caught.value.message.startswith("Invalid request")


_IDS = st.one_of(
    st.text(st.characters(exclude_categories=["Cs"]), max_size=20),
    st.integers(min_value=-(2**53), max_value=2**53),
)


@given(_IDS)
def test_any_string_or_integer_id_is_accepted_and_echoed(request_id: str | int) -> None:
    raw = orjson.dumps({"jsonrpc": "2.0", "id": request_id, "method": "tools/list"})
    message = _parse(raw)
    assert isinstance(message, jsonrpc.Request)
    assert message.id == request_id
    assert jsonrpc.request_id_of(orjson.loads(raw)) == request_id


def test_request_id_of_recovers_valid_ids_only() -> None:
    assert jsonrpc.request_id_of({"id": "abc", "method": 5}) == "abc"
    assert jsonrpc.request_id_of({"id": 9}) == 9
    assert jsonrpc.request_id_of({"id": None}) is None
    assert jsonrpc.request_id_of({"id": False}) is None
    assert jsonrpc.request_id_of([{"id": 1}]) is None
    assert jsonrpc.request_id_of("nope") is None


def test_reply_builders_produce_json_rpc_objects() -> None:
    assert jsonrpc.result_response(1, {"x": 1}) == {"jsonrpc": "2.0", "id": 1, "result": {"x": 1}}
    assert jsonrpc.error_response(None, {"code": -32700, "message": "m"}) == {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": -32700, "message": "m"},
    }
    assert jsonrpc.notification("notifications/progress", {"progress": 1}) == {
        "jsonrpc": "2.0",
        "method": "notifications/progress",
        "params": {"progress": 1},
    }
    assert jsonrpc.request("s-1", "elicitation/create", {}) == {
        "jsonrpc": "2.0",
        "id": "s-1",
        "method": "elicitation/create",
        "params": {},
    }


def test_error_from_carries_code_message_data_and_optional_code_override() -> None:
    error = InvalidParams("bad uri", {"uri": "x://y"})
    assert jsonrpc.error_from(4, error) == {
        "jsonrpc": "2.0",
        "id": 4,
        "error": {"code": -32602, "message": "bad uri", "data": {"uri": "x://y"}},
    }
    assert jsonrpc.error_from(4, error, -32002)["error"]["code"] == -32002
    assert "data" not in jsonrpc.error_from(None, InvalidParams("no data"))["error"]


def test_encode_is_compact_single_line_utf8() -> None:
    data = encode(jsonrpc.notification("m", {"text": "line1\nline2 ünï"}))
    assert b"\n" not in data
    assert orjson.loads(data)["params"]["text"] == "line1\nline2 ünï"
