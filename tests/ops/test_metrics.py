"""/metrics after a known sequence of requests shows exactly the expected series and values."""

from __future__ import annotations

import anyio
import pytest

from tests.ops.support import (
    Gate,
    call_tool,
    initialize,
    labels,
    make_app,
    make_server,
    modern_headers,
    scrape,
    session_headers,
)
from tests.support.asgi import META, open_request, request, rpc

pytestmark = pytest.mark.anyio


async def test_known_sequence_gives_exact_counts() -> None:
    app = make_app()
    for text in ("a", "b", "c"):
        assert (await call_tool(app, "echo", {"text": text})).json()["result"]["isError"] is False
    assert (await call_tool(app, "fail", {})).json()["result"]["isError"] is True
    # Unknown tool names must not become label values: they are counted as "unknown".
    assert (await call_tool(app, "no-such-tool-1", {})).json()["result"]["isError"] is True
    assert (await call_tool(app, "no-such-tool-2", {})).json()["result"]["isError"] is True
    listed = await request(
        app, "POST", headers=modern_headers("tools/list"), body=rpc("tools/list", {"_meta": META})
    )
    assert listed.status == 200
    # A header mismatch is refused before dispatch: a request, but no tool call.
    bad = await request(
        app,
        "POST",
        headers=modern_headers("tools/call", "other"),
        body=rpc("tools/call", {"name": "echo", "arguments": {"text": "x"}, "_meta": META}),
    )
    assert bad.status == 400
    garbage = await request(app, "POST", headers=modern_headers("tools/call"), body=b"{not json")
    assert garbage.status == 400
    session = (await initialize(app)).headers["mcp-session-id"]
    in_session = await request(
        app,
        "POST",
        headers=session_headers(session),
        body=rpc("tools/call", {"name": "echo", "arguments": {"text": "d"}}),
    )
    assert in_session.status == 200
    made_up = await request(app, "POST", headers=session_headers(session), body=rpc("made/up"))
    assert made_up.json()["error"]["code"] == -32601

    samples = await scrape(app)

    def value(name: str, **label_values: str) -> float | None:
        return samples.get((name, labels(**label_values)))

    tool_calls = {k: v for k, v in samples.items() if k[0] == "mcp_tool_calls_total"}
    assert tool_calls == {
        ("mcp_tool_calls_total", labels(tool="echo", status="success")): 4.0,
        ("mcp_tool_calls_total", labels(tool="fail", status="tool_error")): 1.0,
        ("mcp_tool_calls_total", labels(tool="unknown", status="tool_error")): 2.0,
    }
    assert value("mcp_tool_call_duration_seconds_count", tool="echo") == 4.0
    assert value("mcp_tool_call_duration_seconds_count", tool="fail") == 1.0
    assert value("mcp_tool_call_duration_seconds_count", tool="unknown") == 2.0
    assert value("mcp_tool_call_duration_seconds_bucket", tool="echo", le="+Inf") == 4.0
    requests = {k: v for k, v in samples.items() if k[0] == "mcp_requests_total"}
    assert requests == {
        ("mcp_requests_total", labels(method="tools/call", era="modern", status="200")): 6.0,
        ("mcp_requests_total", labels(method="tools/list", era="modern", status="200")): 1.0,
        ("mcp_requests_total", labels(method="tools/call", era="modern", status="400")): 1.0,
        ("mcp_requests_total", labels(method="POST", era="unknown", status="400")): 1.0,
        ("mcp_requests_total", labels(method="initialize", era="legacy", status="200")): 1.0,
        ("mcp_requests_total", labels(method="tools/call", era="legacy", status="200")): 1.0,
        ("mcp_requests_total", labels(method="other", era="legacy", status="200")): 1.0,
    }
    assert value("mcp_active_sessions") == 1.0
    assert value("mcp_requests_in_flight") == 0.0
    assert value("mcp_sse_streams_open") == 0.0
    assert not [k for k in samples if k[0] in ("mcp_rate_limit_rejections_total", "mcp_auth_failures_total")]


async def test_in_flight_and_sse_gauges_follow_open_requests() -> None:
    gate = Gate()
    app = make_app(make_server(gate))
    body = rpc("tools/call", {"name": "hold", "arguments": {}, "_meta": META})
    async with open_request(app, "POST", headers=modern_headers("tools/call", "hold"), body=body):
        with anyio.fail_after(5):
            await gate.entered.wait()
        samples = await scrape(app)
        assert samples[("mcp_requests_in_flight", labels())] == 1.0
    session = (await initialize(app)).headers["mcp-session-id"]
    headers = {**session_headers(session), "accept": "text/event-stream"}
    async with open_request(app, "GET", headers=headers) as stream:
        with anyio.fail_after(5):
            await stream.wait_for(b"retry:")  # the stream's priming event
        assert stream.headers["content-type"] == "text/event-stream"
        assert (await scrape(app))[("mcp_sse_streams_open", labels())] == 1.0
    samples = await scrape(app)
    assert samples[("mcp_sse_streams_open", labels())] == 0.0
    assert samples[("mcp_requests_in_flight", labels())] == 0.0
    assert samples[("mcp_tool_calls_total", labels(tool="hold", status="cancelled"))] == 1.0


async def test_rate_limit_and_auth_failure_counters() -> None:
    app = make_app()
    metrics = app.ops.metrics
    assert metrics is not None
    metrics.rate_limit_rejection("principal")
    metrics.rate_limit_rejection("principal")
    metrics.auth_failure("invalid_token")
    samples = await scrape(app)
    assert samples[("mcp_rate_limit_rejections_total", labels(scope="principal"))] == 2.0
    assert samples[("mcp_auth_failures_total", labels(reason="invalid_token"))] == 1.0


async def test_request_id_is_echoed_or_generated() -> None:
    app = make_app()
    given = await call_tool(app, "echo", {"text": "x"})
    assert len(given.headers["x-request-id"]) == 16
    headers = {**modern_headers("tools/call", "echo"), "x-request-id": "trace-42"}
    body = rpc("tools/call", {"name": "echo", "arguments": {"text": "x"}, "_meta": META})
    assert (await request(app, "POST", headers=headers, body=body)).headers["x-request-id"] == "trace-42"
    headers["x-request-id"] = "bad id with spaces"
    assert (await request(app, "POST", headers=headers, body=body)).headers["x-request-id"] != headers[
        "x-request-id"
    ]
