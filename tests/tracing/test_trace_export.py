"""Traces leave a real server process over OTLP/HTTP and continue the caller's trace.

A tools/call carrying ``_meta.traceparent`` (2026-07-28, a 2025-era session, stdio) becomes a
SERVER span whose parent is the caller's span, with a child for the SQL query (SQLite and
PostgreSQL), and the request's log line names the same trace.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import httpx
import orjson
import pytest

from mcpserve.protocol.versions import MODERN
from tests.demo.pg_demo import loaded_demo_schema
from tests.support.logcheck import check_log_lines
from tests.support.otlp import ReceivedSpan, Receiver, otlp_receiver
from tests.support.processes import child_env, mcpserve_argv
from tests.support.servers import running_server
from tests.support.wire import initialize_request, modern_request
from tests.transports.http.test_connection_limits import serving

pytestmark = pytest.mark.slow

CHILD_APP = Path(__file__).with_name("child_span_app.py")
SQL = "SELECT name, tier FROM services ORDER BY name LIMIT 3"
MODERN_HEADERS = {
    "accept": "application/json, text/event-stream",
    "content-type": "application/json",
    "mcp-protocol-version": MODERN,
    "mcp-method": "tools/call",
    "mcp-name": "query_database",
}
LEGACY_HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


def _ids() -> tuple[str, str]:
    return secrets.token_hex(16), secrets.token_hex(8)


def _traceparent(trace_id: str, span_id: str) -> str:
    return f"00-{trace_id}-{span_id}-01"


def _env(receiver: Receiver, **extra: str) -> dict[str, str]:
    env = {
        "MCPSERVE_TRACING": "true",
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
        "OTEL_BSP_SCHEDULE_DELAY": "50",
        "OTEL_SERVICE_NAME": "mcpserve-under-test",
        "MCPSERVE_RATE_LIMIT_PER_MINUTE": "0",
        "MCPSERVE_RATE_LIMIT_PER_HOUR": "0",
    }
    env.update(extra)
    return env


@contextlib.contextmanager
def traced_server(receiver: Receiver, **env: str) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """The demo over HTTP with tracing on; yields its URL and (after the block) its log lines."""
    lines: list[dict[str, Any]] = []
    with running_server("--transport", "http", env=_env(receiver, **env), lines=lines, measured=True) as url:
        yield url, lines


def _request_line(lines: list[dict[str, Any]], trace_id: str) -> dict[str, Any]:
    found = [line for line in lines if line.get("event") == "request" and line.get("trace_id") == trace_id]
    assert len(found) == 1, [line for line in lines if line.get("event") == "request"]
    return found[0]


def _check_tool_trace(
    receiver: Receiver, trace_id: str, parent: str, system: str, transport: str = "tcp"
) -> ReceivedSpan:
    """The server span continues the caller's span; the SQL query is its child."""
    server = receiver.wait_for(lambda s: s.trace_id == trace_id and s.kind == "SERVER")
    assert server.name == "tools/call query_database"
    assert server.parent_span_id == parent
    assert server.attributes["mcp.method.name"] == "tools/call"
    assert server.attributes["gen_ai.tool.name"] == "query_database"
    assert server.attributes["gen_ai.operation.name"] == "execute_tool"
    assert server.attributes["network.transport"] == transport
    assert "error.type" not in server.attributes
    assert server.resource["service.name"] == "mcpserve-under-test"
    query = receiver.wait_for(lambda s: s.trace_id == trace_id and s.name == "SELECT")
    assert query.parent_span_id == server.span_id
    assert query.kind == "CLIENT"
    assert query.attributes["db.system.name"] == system
    assert query.attributes["db.operation.name"] == "SELECT"
    assert query.attributes["db.response.returned_rows"] == 3
    assert "db.query.text" not in query.attributes  # the caller's SQL may hold literal values
    assert server.start_ns <= query.start_ns <= query.end_ns <= server.end_ns
    return server


def _call_modern(url: str, request_id: int, trace_id: str, parent: str) -> None:
    body = modern_request(request_id, "tools/call", {"name": "query_database", "arguments": {"sql": SQL}})
    body["params"]["_meta"]["traceparent"] = _traceparent(trace_id, parent)
    body["params"]["_meta"]["tracestate"] = "mcpserve-tests=1"
    answer = httpx.post(url, headers=MODERN_HEADERS, content=orjson.dumps(body), timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.json()["result"]["isError"] is False


def _call_legacy(url: str, trace_id: str, parent: str) -> str:
    with httpx.Client(headers=LEGACY_HEADERS, timeout=10) as client:
        opened = client.post(url, content=orjson.dumps(initialize_request()))
        session = opened.headers["mcp-session-id"]
        headers = {"mcp-session-id": session, "mcp-protocol-version": "2025-11-25"}
        note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        assert client.post(url, headers=headers, content=orjson.dumps(note)).status_code == 202
        meta = {"traceparent": _traceparent(trace_id, parent)}
        params = {"name": "query_database", "arguments": {"sql": SQL}, "_meta": meta}
        call = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": params}
        answer = client.post(url, headers=headers, content=orjson.dumps(call))
        assert answer.status_code == 200, answer.text
        assert answer.json()["result"]["isError"] is False
        return session


def test_both_eras_over_http_export_the_callers_trace_with_a_sql_child_and_log_it() -> None:
    modern_trace, modern_parent = _ids()
    legacy_trace, legacy_parent = _ids()
    with otlp_receiver() as receiver:
        with traced_server(receiver) as (url, lines):
            _call_modern(url, 1, modern_trace, modern_parent)
            session = _call_legacy(url, legacy_trace, legacy_parent)
            modern = _check_tool_trace(receiver, modern_trace, modern_parent, "sqlite")
            legacy = _check_tool_trace(receiver, legacy_trace, legacy_parent, "sqlite")
        assert modern.attributes["mcp.protocol.version"] == MODERN
        assert modern.attributes["jsonrpc.request.id"] == "1"
        assert "mcp.session.id" not in modern.attributes
        assert legacy.attributes["mcp.protocol.version"] == "2025-11-25"
        assert legacy.attributes["mcp.session.id"] == session
        # The request's log line names the trace and the server span.
        assert _request_line(lines, modern_trace)["span_id"] == modern.span_id
        assert _request_line(lines, legacy_trace)["span_id"] == legacy.span_id
        # initialize carried no trace context: a root span of its own, with no log line tied to ours.
        init = receiver.wait_for(lambda s: s.name == "initialize")
        assert init.parent_span_id == ""
        assert init.trace_id not in (modern_trace, legacy_trace)


def test_the_http_traceparent_header_is_the_parent_without_meta_and_a_link_beside_it() -> None:
    header_trace, header_parent = _ids()
    meta_trace, meta_parent = _ids()
    with otlp_receiver() as receiver, traced_server(receiver) as (url, _):
        body = modern_request(3, "tools/list")
        headers = {
            **MODERN_HEADERS,
            "mcp-method": "tools/list",
            "traceparent": _traceparent(header_trace, header_parent),
        }
        del headers["mcp-name"]
        assert httpx.post(url, headers=headers, content=orjson.dumps(body), timeout=10).status_code == 200
        listed = receiver.wait_for(lambda s: s.trace_id == header_trace)
        assert (listed.name, listed.parent_span_id) == ("tools/list", header_parent)
        body["params"]["_meta"]["traceparent"] = _traceparent(meta_trace, meta_parent)
        assert httpx.post(url, headers=headers, content=orjson.dumps(body), timeout=10).status_code == 200
        both = receiver.wait_for(lambda s: s.trace_id == meta_trace)
        assert both.parent_span_id == meta_parent
        assert both.links == [(header_trace, header_parent)]


def test_a_failed_call_is_an_error_span() -> None:
    trace_id, parent = _ids()
    with otlp_receiver() as receiver, traced_server(receiver) as (url, _):
        body = modern_request(
            5, "tools/call", {"name": "query_database", "arguments": {"sql": "DELETE FROM x"}}
        )
        body["params"]["_meta"]["traceparent"] = _traceparent(trace_id, parent)
        answer = httpx.post(url, headers=MODERN_HEADERS, content=orjson.dumps(body), timeout=10)
        assert answer.json()["result"]["isError"] is True
        server = receiver.wait_for(lambda s: s.trace_id == trace_id and s.kind == "SERVER")
        assert server.attributes["error.type"] == "tool_error"
        assert server.status_code == 2  # STATUS_CODE_ERROR
        query = receiver.wait_for(lambda s: s.trace_id == trace_id and s.kind == "CLIENT")
        assert (query.name, query.parent_span_id) == ("QUERY", server.span_id)  # DELETE: not a read
        assert query.attributes["error.type"] == "QueryRejected"
        assert query.status_code == 2


def test_sampling_is_configured_by_the_standard_variables() -> None:
    with otlp_receiver() as receiver:
        with traced_server(receiver, OTEL_TRACES_SAMPLER="always_off") as (url, lines):
            for request_id in (1, 2):
                body = modern_request(request_id, "tools/list")
                if request_id == 1:  # with the caller's context, and (2) without: decided before any span
                    body["params"]["_meta"]["traceparent"] = _traceparent(*_ids())
                headers = {**MODERN_HEADERS, "mcp-method": "tools/list"}
                del headers["mcp-name"]
                assert (
                    httpx.post(url, headers=headers, content=orjson.dumps(body), timeout=10).status_code
                    == 200
                )
        # always_off ignores even a sampled parent; the process flushed at exit and sent nothing.
        assert receiver.spans == []
        assert [line for line in lines if line.get("event") == "request"]
        assert all("trace_id" not in line for line in lines)


def test_a_child_of_a_request_left_out_of_sampling_is_left_out_with_it(tmp_path: Path) -> None:
    """Over HTTP a left-out request makes its span only when read: a child span's sampler reads it
    as the parent and follows it, and an outgoing request carries its trace, flagged unsampled."""
    with otlp_receiver() as receiver:
        sampler = {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.5"}
        env = {k: v for k, v in _env(receiver, **sampler).items() if not k.startswith("MCPSERVE_RATE")}
        with serving(tmp_path, CHILD_APP, **env) as server:
            sent = []
            for request_id in range(1, 41):
                body = modern_request(request_id, "tools/call", {"name": "child", "arguments": {}})
                headers = {**MODERN_HEADERS, "mcp-name": "child"}
                url = f"http://127.0.0.1:{server.port}/mcp"
                answer = httpx.post(url, headers=headers, content=orjson.dumps(body), timeout=10)
                assert answer.status_code == 200, answer.text
                sent.append(answer.json()["result"]["content"][0]["text"].split("-"))
        requests = {span.trace_id: span.span_id for span in receiver.spans if span.kind == "SERVER"}
        children = [span for span in receiver.spans if span.name == "child"]
        assert 0 < len(requests) < 40  # about half, by the ratio (all or none: 2 in 10^12)
        assert sorted((child.trace_id, child.parent_span_id) for child in children) == sorted(
            requests.items()
        )
        for _, trace_id, _, flags in sent:  # each request's own trace, sampled exactly when exported
            assert bool(int(flags, 16) & 1) == (trace_id in requests)
        assert len({trace_id for _, trace_id, _, _ in sent}) == 40


@pytest.mark.anyio
async def test_postgresql_queries_are_spans_too() -> None:
    trace_id, parent = _ids()
    async with loaded_demo_schema() as schema:
        with (
            otlp_receiver() as receiver,
            traced_server(receiver, MCPSERVE_DATABASE_URL=schema.url) as (url, _),
        ):
            await anyio.to_thread.run_sync(_call_modern, url, 2, trace_id, parent)
            await anyio.to_thread.run_sync(_check_tool_trace, receiver, trace_id, parent, "postgresql")
            query = next(span for span in receiver.in_trace(trace_id) if span.name == "SELECT")
            assert query.attributes["server.address"] == "127.0.0.1"
            assert query.attributes["server.port"] == 5432


def test_stdio_continues_the_trace_from_meta_and_flushes_at_exit(tmp_path: Path) -> None:
    trace_id, parent = _ids()
    with otlp_receiver() as receiver:
        body = modern_request(1, "tools/call", {"name": "query_database", "arguments": {"sql": SQL}})
        body["params"]["_meta"]["traceparent"] = _traceparent(trace_id, parent)
        # The default batch delay (5 s) is longer than this run: only the flush at exit sends the spans.
        env = _env(receiver)
        del env["OTEL_BSP_SCHEDULE_DELAY"]
        done = subprocess.run(
            mcpserve_argv("serve", "--transport", "stdio"),
            input=orjson.dumps(body) + b"\n",
            env=child_env(**env),
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        answer = orjson.loads(done.stdout.splitlines()[0])
        assert answer["result"]["isError"] is False
        check_log_lines(done.stderr)
        _check_tool_trace(receiver, trace_id, parent, "sqlite", transport="pipe")
    assert os.environ.get("MCPSERVE_TRACING") is None  # the test's own environment is untouched
