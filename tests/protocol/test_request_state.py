"""Sealed ``requestState``: round trip, binding to caller and request, expiry, uniform failure."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
import pytest

from mcpserve.errors import InvalidParams, InvalidRequestState
from mcpserve.protocol.request_state import (
    INVALID_REQUEST_STATE_MESSAGE,
    argument_digest,
    open_request_state,
    seal_request_state,
)
from mcpserve.protocol.sealing import KeyRing

RING = KeyRing([bytes(range(32))])
NOW = 1_000_000.0
TTL = 600.0
BINDING: dict[str, Any] = {
    "principal": "alice",
    "method": "tools/call",
    "target": "deploy",
    "arguments": {"env": "prod", "count": 3, "opts": {"b": 1, "a": [1, 2]}},
}
STATE = {"step": 2, "answers": {"confirm": True}, "note": "ünïcode"}


def _seal(state: Any = STATE, **overrides: Any) -> str:
    binding = {**BINDING, **overrides}
    return seal_request_state(RING, state, **binding, now=NOW, ttl=TTL)


def _open(token: Any, now: float = NOW + 1, **overrides: Any) -> Any:
    binding = {**BINDING, **overrides}
    return open_request_state(RING, token, **binding, now=now)


def _assert_rejected(token: Any, now: float = NOW + 1, **overrides: Any) -> None:
    with pytest.raises(InvalidRequestState) as caught:
        _open(token, now, **overrides)
    assert caught.value.message == INVALID_REQUEST_STATE_MESSAGE
    assert caught.value.to_error() == {"code": -32602, "message": INVALID_REQUEST_STATE_MESSAGE}
    assert caught.value.__cause__ is None


def test_round_trip() -> None:
    assert _open(_seal()) == STATE


@pytest.mark.parametrize("state", [None, 0, "", [], {}, "text", [1, "two", {"three": 3.5}]])
def test_round_trip_of_any_json_value(state: Any) -> None:
    assert _open(_seal(state)) == state


def test_anonymous_principal_round_trips_and_is_distinct_from_empty_string() -> None:
    token = _seal(principal=None)
    assert _open(token, principal=None) == STATE
    _assert_rejected(token, principal="")
    _assert_rejected(_seal(principal=""), principal=None)


def test_argument_order_does_not_matter() -> None:
    reordered = {"opts": {"a": [1, 2], "b": 1}, "count": 3, "env": "prod"}
    assert _open(_seal(), arguments=reordered) == STATE


def test_missing_and_empty_arguments_are_the_same_binding() -> None:
    assert _open(_seal(arguments=None), arguments={}) == STATE
    assert _open(_seal(arguments={}), arguments=None) == STATE


@pytest.mark.parametrize(
    "mismatch",
    [
        {"principal": "mallory"},
        {"principal": None},
        {"method": "prompts/get"},
        {"target": "delete"},
        {"arguments": {"env": "staging", "count": 3, "opts": {"b": 1, "a": [1, 2]}}},
        {"arguments": {"env": "prod", "count": 3, "opts": {"b": 1, "a": [2, 1]}}},
        {"arguments": {"env": "prod", "count": 3}},
        {"arguments": None},
    ],
)
def test_each_binding_mismatch_is_rejected(mismatch: dict[str, Any]) -> None:
    _assert_rejected(_seal(), **mismatch)


def test_resource_uri_is_bound_as_target() -> None:
    token = _seal(method="resources/read", target="file:///a.txt", arguments=None)
    assert _open(token, method="resources/read", target="file:///a.txt", arguments=None) == STATE
    _assert_rejected(token, method="resources/read", target="file:///b.txt", arguments=None)


def test_expiry() -> None:
    token = _seal()
    assert _open(token, now=NOW) == STATE
    assert _open(token, now=NOW + TTL - 0.001) == STATE
    _assert_rejected(token, now=NOW + TTL)
    _assert_rejected(token, now=NOW + TTL + 3600)
    _assert_rejected(token, now=float("nan"))


@pytest.mark.parametrize(
    "token",
    [
        "",
        "garbage",
        "v1.",
        "v1.AAAA",
        "-TAMPERED",
    ],
)
def test_garbage_tokens_are_rejected(token: str) -> None:
    _assert_rejected(token)


def test_tampered_token_is_rejected() -> None:
    token = _seal()
    _assert_rejected(token + "-TAMPERED")
    _assert_rejected(token[:-2])
    _assert_rejected(token[:10] + ("A" if token[10] != "A" else "B") + token[11:])


@pytest.mark.parametrize("token", [None, 42, 1.5, True, [], {}, b"v1.AAAA"])
def test_non_string_tokens_are_rejected(token: Any) -> None:
    _assert_rejected(token)


def test_token_from_another_key_ring_is_rejected() -> None:
    other = seal_request_state(KeyRing.ephemeral(), STATE, **BINDING, now=NOW, ttl=TTL)
    _assert_rejected(other)


def test_raw_ring_token_without_request_state_framing_is_rejected() -> None:
    # Same key, but sealed for another purpose: domain separation keeps it from opening as a state.
    _assert_rejected(RING.seal(orjson.dumps({"exp": NOW + TTL, "s": STATE}), b""))


@pytest.mark.parametrize(
    "plaintext",
    [
        b"not json",
        b"[1, 2]",
        b'{"exp": 9e99}',
        b'{"s": 1}',
        b'{"exp": "later", "s": 1}',
        b'{"exp": true, "s": 1}',
    ],
)
def test_malformed_plaintext_is_rejected(plaintext: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(KeyRing, "open", lambda self, token, aad: plaintext)
    _assert_rejected("v1.anything")


def test_unserialisable_arguments_on_open_are_just_a_mismatch() -> None:
    _assert_rejected(_seal(), arguments={"when": object()})


def test_all_failures_are_indistinguishable() -> None:
    token = _seal()
    failures = []
    attempts: list[tuple[Any, dict[str, Any]]] = [
        (token, {"principal": "mallory"}),
        (token, {"now": NOW + TTL + 1}),
        (token + "-TAMPERED", {}),
        (None, {}),
        (token, {"target": "other"}),
    ]
    for candidate, overrides in attempts:
        with pytest.raises(InvalidRequestState) as caught:
            _open(candidate, **overrides)
        failures.append((type(caught.value), str(caught.value), caught.value.to_error()))
    assert len(set(map(repr, failures))) == 1
    assert issubclass(InvalidRequestState, InvalidParams)


def test_seal_validates_ttl_and_now() -> None:
    for now, ttl in ((NOW, 0.0), (NOW, -1.0), (NOW, float("inf")), (float("nan"), TTL)):
        with pytest.raises(ValueError, match="ttl"):
            seal_request_state(RING, STATE, **BINDING, now=now, ttl=ttl)


def test_seal_rejects_state_that_is_not_json() -> None:
    with pytest.raises(TypeError):
        _seal({"x": object()})


def test_argument_digest() -> None:
    expected = hashlib.sha256(b'{"a":1,"b":{"c":2,"d":3}}').hexdigest()
    assert argument_digest({"b": {"d": 3, "c": 2}, "a": 1}) == expected
    assert argument_digest(None) == argument_digest({}) == hashlib.sha256(b"{}").hexdigest()
    assert argument_digest({"a": 1}) != argument_digest({"a": "1"})
