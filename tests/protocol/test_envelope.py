"""The 2026-07-28 per-request ``_meta`` envelope and its validation ladder."""

from __future__ import annotations

from typing import Any

import pytest

from mcpserve.errors import InvalidParams, UnsupportedProtocolVersion
from mcpserve.protocol.envelope import (
    CLIENT_CAPABILITIES_KEY,
    CLIENT_INFO_KEY,
    LOG_LEVEL_KEY,
    LOG_LEVELS,
    PROTOCOL_VERSION_KEY,
    RequestMeta,
    check_log_level,
    protocol_version_of,
    read_request_meta,
)
from tests.support.wire import modern_meta


def test_valid_envelope_yields_everything_the_server_needs() -> None:
    meta = modern_meta({"elicitation": {}}, log_level="warning", progress_token="tok-1")
    assert read_request_meta({"_meta": meta}) == RequestMeta(
        protocol_version="2026-07-28",
        client_capabilities={"elicitation": {}},
        client_info={"name": "mcpserve-tests", "version": "0"},
        log_level="warning",
        progress_token="tok-1",
    )


def test_minimal_envelope_needs_only_version_and_capabilities() -> None:
    meta = read_request_meta({"_meta": {PROTOCOL_VERSION_KEY: "2026-07-28", CLIENT_CAPABILITIES_KEY: {}}})
    assert meta == RequestMeta("2026-07-28", {}, None, None, None)
    assert read_request_meta({"_meta": {**modern_meta(), "progressToken": 7}}).progress_token == 7


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({}, "Missing params._meta"),
        ({"_meta": "not an object"}, "Missing params._meta"),
        ({"_meta": {CLIENT_CAPABILITIES_KEY: {}}}, PROTOCOL_VERSION_KEY),
        ({"_meta": {PROTOCOL_VERSION_KEY: "2026-07-28"}}, CLIENT_CAPABILITIES_KEY),
        (
            {"_meta": {PROTOCOL_VERSION_KEY: "2026-07-28", CLIENT_CAPABILITIES_KEY: []}},
            CLIENT_CAPABILITIES_KEY,
        ),
    ],
)
def test_missing_envelope_fields_are_invalid_params(params: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InvalidParams, match="Missing") as caught:
        read_request_meta(params)
    assert caught.value.code == -32602
    assert fragment in caught.value.message


def test_missing_capabilities_is_reported_before_an_unsupported_version() -> None:
    with pytest.raises(InvalidParams):
        read_request_meta({"_meta": {PROTOCOL_VERSION_KEY: "1999-01-01"}})


@pytest.mark.parametrize("version", ["2025-11-25", "2099-01-01", "", 20260728, None])
def test_unsupported_version_is_32022_with_supported_and_requested(version: Any) -> None:
    with pytest.raises(UnsupportedProtocolVersion) as caught:
        read_request_meta({"_meta": {PROTOCOL_VERSION_KEY: version, CLIENT_CAPABILITIES_KEY: {}}})
    error = caught.value.to_error()
    assert error["code"] == -32022
    assert error["data"] == {"supported": ["2026-07-28"], "requested": version}


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ({CLIENT_INFO_KEY: "me"}, CLIENT_INFO_KEY),
        ({LOG_LEVEL_KEY: "verbose"}, "Invalid log level"),
        ({LOG_LEVEL_KEY: 3}, "Invalid log level"),
        ({"progressToken": True}, "progressToken"),
        ({"progressToken": 1.5}, "progressToken"),
        ({"progressToken": {"a": 1}}, "progressToken"),
    ],
)
def test_invalid_optional_fields_are_invalid_params(extra: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InvalidParams) as caught:
        read_request_meta({"_meta": {**modern_meta(), **extra}})
    assert caught.value.code == -32602
    assert fragment in caught.value.message


def test_log_levels_are_the_rfc5424_set_least_severe_first() -> None:
    assert LOG_LEVELS == ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")
    for level in LOG_LEVELS:
        assert check_log_level(level) == level
    with pytest.raises(InvalidParams, match="use one of: debug, info"):
        check_log_level("WARNING")


def test_protocol_version_of_reads_meta_without_validating() -> None:
    assert protocol_version_of({"_meta": {PROTOCOL_VERSION_KEY: "2026-07-28"}}) == "2026-07-28"
    assert protocol_version_of({"_meta": {}}) is None
    assert protocol_version_of({"_meta": "x"}) is None
    assert protocol_version_of({}) is None
