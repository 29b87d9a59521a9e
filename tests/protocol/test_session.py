"""2025-era session state: creation from ``initialize``, transitions, and its stored form."""

from __future__ import annotations

from typing import Any

import pytest

from mcpserve.errors import InvalidParams
from mcpserve.protocol.session import LegacySession, start_session


def test_start_session_negotiates_version_and_keeps_client_facts() -> None:
    session = start_session(
        {"protocolVersion": "2025-06-18", "capabilities": {"elicitation": {}}, "clientInfo": {"name": "c"}},
        "alice",
    )
    assert session == LegacySession("2025-06-18", {"elicitation": {}}, {"name": "c"}, principal="alice")
    assert not session.initialized
    assert session.log_level is None
    assert session.subscriptions == frozenset()


def test_start_session_defaults_missing_capabilities_and_client_info() -> None:
    session = start_session({"protocolVersion": "2099-01-01"}, None)
    assert session == LegacySession("2025-11-25", {}, {}, principal=None)


def test_start_session_requires_a_protocol_version() -> None:
    with pytest.raises(InvalidParams, match="protocolVersion") as caught:
        start_session({"capabilities": {}}, None)
    assert caught.value.code == -32602


@pytest.mark.parametrize(
    "params",
    [
        {"protocolVersion": "2025-11-25", "capabilities": ["elicitation"]},
        {"protocolVersion": "2025-11-25", "clientInfo": "client"},
    ],
)
def test_start_session_rejects_non_object_capabilities_or_client_info_as_invalid_params(
    params: dict[str, Any],
) -> None:
    with pytest.raises(InvalidParams) as caught:
        start_session(params, None)
    assert caught.value.code == -32602


def test_transitions_return_new_values_and_leave_the_original_alone() -> None:
    session = start_session({"protocolVersion": "2025-11-25"}, None)
    initialized = session.mark_initialized()
    assert initialized.initialized and not session.initialized
    assert initialized.mark_initialized() is initialized
    leveled = initialized.with_log_level("error")
    assert leveled.log_level == "error" and initialized.log_level is None
    subscribed = leveled.subscribe("a://1").subscribe("a://2")
    assert subscribed.subscriptions == {"a://1", "a://2"}
    assert subscribed.unsubscribe("a://1").subscriptions == {"a://2"}
    assert subscribed.unsubscribe("never://subscribed").subscriptions == subscribed.subscriptions


def test_invalid_log_level_is_rejected() -> None:
    session = start_session({"protocolVersion": "2025-11-25"}, None)
    with pytest.raises(InvalidParams, match="Invalid log level"):
        session.with_log_level("loud")


def test_json_round_trip_preserves_every_field() -> None:
    session = (
        start_session({"protocolVersion": "2025-03-26", "capabilities": {"roots": {}}}, "bob")
        .mark_initialized()
        .with_log_level("notice")
        .subscribe("b://2")
        .subscribe("a://1")
    )
    record = session.to_json()
    assert record["subscriptions"] == ["a://1", "b://2"]
    assert record["format"] == 1
    assert LegacySession.from_json(record) == session


@pytest.mark.parametrize("record", [None, [], {"format": 999}, {"protocolVersion": "2025-11-25"}])
def test_unrecognised_records_are_refused(record: Any) -> None:
    with pytest.raises(ValueError, match="unrecognised session record"):
        LegacySession.from_json(record)


def test_rebase_keeps_both_replicas_transitions() -> None:
    before = (
        start_session({"protocolVersion": "2025-11-25"}, None).subscribe("a://kept").subscribe("a://gone")
    )
    # This replica set a level and changed subscriptions; another wrote first meanwhile.
    mine = before.with_log_level("debug").subscribe("a://mine").unsubscribe("a://gone")
    theirs = before.mark_initialized().subscribe("a://theirs").with_log_level("error")
    merged = mine.rebase(before, theirs)
    assert merged.initialized
    assert merged.log_level == "debug"  # ours changed it: ours is the later write
    assert merged.subscriptions == {"a://kept", "a://mine", "a://theirs"}
    untouched = before.subscribe("a://x").rebase(before, theirs)
    assert untouched.log_level == "error"  # ours left the level alone: theirs stays
