"""JSON logs: one line per request with its fields, stdlib routed through, configuration redacted."""

from __future__ import annotations

import io
import logging

import orjson
import pytest

from mcpserve.config import load_settings
from mcpserve.observability.logs import configure_logging, get_logger, write_event
from mcpserve.protocol.sealing import KeyRing
from mcpserve.runtime import configure_logging as configure_runtime_logging
from tests.ops.support import call_tool, initialize, make_app, modern_headers, session_headers
from tests.support.asgi import META, request, rpc
from tests.support.logcheck import REQUEST_FIELDS, check_log_lines, secret

pytestmark = pytest.mark.anyio


def lines(stream: io.BytesIO) -> list[dict[str, object]]:
    return check_log_lines(stream.getvalue())


async def test_one_line_per_request_with_its_fields(checked_logs: io.BytesIO) -> None:
    app = make_app()
    session = (await initialize(app)).headers["mcp-session-id"]
    body = rpc("tools/call", {"name": "echo", "arguments": {"text": "hi"}}, request_id=5)
    headers = {**session_headers(session), "x-request-id": "req-1"}
    assert (await request(app, "POST", headers=headers, body=body)).status == 200
    assert (await call_tool(app, "fail", {})).status == 200
    logged = [line for line in lines(checked_logs) if line["event"] == "request"]
    assert len(logged) == 3
    assert all(line.keys() >= REQUEST_FIELDS for line in logged)
    init, in_session, modern = logged
    assert (init["method"], init["era"], init["session_id"], init["status"]) == (
        "initialize",
        "legacy",
        session,
        200,
    )
    assert {
        k: in_session[k] for k in ("request_id", "era", "session_id", "method", "tool", "status", "outcome")
    } == {
        "request_id": "req-1",
        "era": "legacy",
        "session_id": session,
        "method": "tools/call",
        "tool": "echo",
        "status": 200,
        "outcome": "success",
    }
    assert (modern["era"], modern["session_id"], modern["tool"], modern["outcome"]) == (
        "modern",
        None,
        "fail",
        "tool_error",
    )
    assert isinstance(modern["duration_ms"], float)
    assert modern["principal"] is None


def test_standard_library_lines_are_json_with_level_logger_and_exception() -> None:
    stream = io.BytesIO()
    configure_logging("warning", stream)
    log = logging.getLogger("some.library")
    log.info("filtered out")
    log.warning("disk %s%% full", 91)
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed")
    get_logger("mcpserve.test").info("also filtered")
    get_logger("mcpserve.test").warning("ours", detail=1)
    parsed = lines(stream)
    assert [(line["event"], line["level"], line["logger"]) for line in parsed] == [
        ("disk 91% full", "warning", "some.library"),
        ("failed", "error", "some.library"),
        ("ours", "warning", "mcpserve.test"),
    ]
    assert "ValueError: boom" in str(parsed[1]["exception"])
    assert parsed[2]["detail"] == 1


def test_httpx_request_lines_only_at_debug() -> None:
    """httpx logs every request it sends at info: one line per span export or upstream call."""
    stream = io.BytesIO()
    configure_logging("info", stream)
    httpx_log = logging.getLogger("httpx")
    httpx_log.info('HTTP Request: POST http://collector/v1/traces "HTTP/1.1 200 OK"')
    httpx_log.warning("kept")
    assert [line["event"] for line in lines(stream)] == ["kept"]
    stream = io.BytesIO()
    configure_logging("debug", stream)
    httpx_log.info("request line")
    assert [line["event"] for line in lines(stream)] == ["request line"]


def test_a_one_line_summary_comes_first_and_the_configuration_only_at_debug() -> None:
    stream = io.BytesIO()
    configure_runtime_logging(load_settings({"auth": "none", "port": 8123}), stream)
    (only,) = lines(stream)
    assert only["level"] == "info"
    assert str(only["event"]).endswith("starting on http://127.0.0.1:8123/mcp")
    assert len(stream.getvalue()) < 200
    stream = io.BytesIO()
    configure_runtime_logging(load_settings({"transport": "stdio"}), stream)
    assert str(lines(stream)[0]["event"]).endswith("starting on stdio")


def test_configuration_line_at_debug_is_redacted() -> None:
    key = secret(KeyRing.generate_key_string())
    password = secret("db-pass-in-config-line")
    settings = load_settings(
        {
            "auth": "none",
            "log_level": "debug",
            "request_state_keys": key,
            "database_url": f"postgresql://app:{password}@db:5432/app",
        }
    )
    stream = io.BytesIO()
    configure_runtime_logging(settings, stream)
    first = orjson.loads(stream.getvalue().splitlines()[1])
    assert first["event"] == "configuration" and first["level"] == "debug"
    assert first["config"]["request_state_keys"] == ["**********"]
    assert first["config"]["database_url"] == "postgresql://app:**********@db:5432/app"
    assert key.encode() not in stream.getvalue()
    assert password.encode() not in stream.getvalue()


def test_credentials_in_free_text_are_masked() -> None:
    stream = io.BytesIO()
    configure_logging("info", stream)
    try:
        raise ConnectionResetError("redis://:s3cret-in-exception@10.0.0.5 reset")
    except ConnectionResetError:
        logging.getLogger("some.driver").exception("lost postgresql://app:pw-in-message@db/app")
    get_logger("mcpserve.test").info("upstream said", header="Authorization: Bearer abc.def-ghi_123")
    parsed = lines(stream)
    assert b"s3cret-in-exception" not in stream.getvalue()
    assert b"pw-in-message" not in stream.getvalue()
    assert b"abc.def-ghi_123" not in stream.getvalue()
    assert parsed[0]["event"] == "lost postgresql://app:**********@db/app"
    assert "redis://:**********@10.0.0.5 reset" in str(parsed[0]["exception"])
    assert parsed[1]["header"] == "Authorization: Bearer **********"


def test_the_log_check_catches_secrets_and_credentials() -> None:
    leaked = secret("leaked-value-for-the-check")
    with pytest.raises(AssertionError, match="a secret appears"):
        check_log_lines(orjson.dumps({"event": leaked, "level": "info", "timestamp": "t"}))
    with pytest.raises(AssertionError, match="a credential appears"):
        check_log_lines(
            orjson.dumps({"event": "Authorization: Bearer abcdefgh12345", "level": "info", "timestamp": "t"})
        )
    with pytest.raises(AssertionError, match="a credential appears"):
        check_log_lines(orjson.dumps({"event": "postgresql://u:pw@h/db", "level": "info", "timestamp": "t"}))
    with pytest.raises(orjson.JSONDecodeError):
        check_log_lines(b"plain text line")
    assert check_log_lines(
        orjson.dumps({"event": "postgresql://u:***@h/db", "level": "info", "timestamp": "t"})
    )


async def test_request_line_masks_credentials_a_client_put_in_a_tool_name(checked_logs: io.BytesIO) -> None:
    app = make_app()
    pasted = "Bearer " + "x" * 24
    assert (await call_tool(app, pasted, {})).status == 200
    logged = [line for line in lines(checked_logs) if line["event"] == "request"]
    assert [line["tool"] for line in logged] == ["Bearer **********"]
    assert logged[0]["logger"] == "mcpserve.request" and logged[0]["level"] == "info"
    assert str(logged[0]["timestamp"]).endswith("Z")


def test_write_event_masks_only_the_client_fields_and_only_when_the_line_needs_it() -> None:
    stream = io.BytesIO()
    configure_logging("info", stream)
    clean = {"tool": "echo", "note": "nothing to hide"}
    write_event("info", "t", "clean", clean, ("tool",))
    url = {"tool": "redis://user:hunter2-pw@cache:6379/0", "owner": "ops@example.com"}
    write_event("info", "t", "url", url, ("tool",))
    first, second = lines(stream)
    assert first["tool"] == "echo" and first["note"] == "nothing to hide"
    assert second["tool"] == "redis://user:**********@cache:6379/0"
    assert second["owner"] == "ops@example.com"  # not a client field: left as written
    assert b"hunter2-pw" not in stream.getvalue()


# Every spelling of the scheme: RFC 9110 makes it case-insensitive, and a client chooses the case.
_EVERY_CASE = [
    "".join(c.upper() if mask >> i & 1 else c for i, c in enumerate("bearer")) for mask in range(64)
]


def test_every_case_of_the_bearer_scheme_is_masked_on_the_request_line_path() -> None:
    stream = io.BytesIO()
    configure_logging("info", stream)
    for scheme in _EVERY_CASE:
        fields = {
            "tool": f"{scheme} tool-token-{scheme}",
            "method": f"{scheme}\tmethod-token-{scheme}",
            "session_id": f"{scheme} session-token-{scheme}",
        }
        write_event("info", "t", "request", fields, ("tool", "method", "session_id"))
    logged = lines(stream)
    assert len(logged) == 64
    for scheme, line in zip(_EVERY_CASE, logged, strict=True):
        assert line["tool"] == f"{scheme} **********"
        assert line["method"] == f"{scheme}\t**********"
        assert line["session_id"] == f"{scheme} **********"
    assert b"-token-" not in stream.getvalue()


def test_every_case_of_the_bearer_scheme_is_masked_on_the_structlog_path() -> None:
    stream = io.BytesIO()
    configure_logging("info", stream)
    for scheme in _EVERY_CASE:
        get_logger("mcpserve.test").info("upstream said", header=f"Authorization: {scheme} ours-{scheme}")
        logging.getLogger("some.library").warning("sent Authorization: %s theirs-%s", scheme, scheme)
    logged = lines(stream)
    assert len(logged) == 128
    for scheme, ours, theirs in zip(_EVERY_CASE, logged[::2], logged[1::2], strict=True):
        assert ours["header"] == f"Authorization: {scheme} **********"
        assert theirs["event"] == f"sent Authorization: {scheme} **********"
    assert b"ours-" not in stream.getvalue() and b"theirs-" not in stream.getvalue()


@pytest.mark.parametrize("scheme", ["BEARER", "bEaReR"])
async def test_a_tool_method_or_session_spelling_the_scheme_in_any_case_is_masked(
    checked_logs: io.BytesIO, scheme: str
) -> None:
    app = make_app()
    assert (await call_tool(app, f"{scheme} {'x' * 24}", {})).status == 200
    method = rpc(f"{scheme} {'y' * 24}", {"_meta": META})
    await request(app, "POST", headers=modern_headers(f"{scheme} {'y' * 24}"), body=method)
    stale = session_headers(f"{scheme} {'z' * 24}")
    await request(app, "POST", headers=stale, body=rpc("tools/list"))
    logged = [line for line in lines(checked_logs) if line["event"] == "request"]
    assert [line["tool"] for line in logged[:1]] == [f"{scheme} **********"]
    assert len(logged) == 3
    assert logged[1]["method"] == f"{scheme} **********"
    assert logged[2]["session_id"] == f"{scheme} **********"
