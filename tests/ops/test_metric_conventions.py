"""The OpenTelemetry MCP metric, the session duration histogram, the readiness and build series,
and label sets that stay bounded whatever names clients send."""

from __future__ import annotations

import random
import string

import pytest

from mcpserve.observability.metrics import MAX_PRINCIPAL_LABELS, Metrics
from mcpserve.store.memory import MemorySessionStore
from tests.ops.support import call_tool, initialize, labels, make_app, scrape, session_headers
from tests.support.asgi import request

pytestmark = pytest.mark.anyio
OPERATION = "mcp_server_operation_duration_seconds"


def series(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str
) -> set[frozenset[tuple[str, str]]]:
    return {labels for (sample, labels) in samples if sample == name}


async def test_operation_duration_follows_the_otel_mcp_convention() -> None:
    app = make_app()
    await call_tool(app, "echo", {"text": "x"})
    await call_tool(app, "fail", {})
    session = (await initialize(app)).headers["mcp-session-id"]
    samples = await scrape(app)
    ok = labels(mcp_method_name="tools/call", gen_ai_tool_name="echo", error_type="", network_transport="tcp")
    failed = labels(
        mcp_method_name="tools/call",
        gen_ai_tool_name="fail",
        error_type="tool_error",
        network_transport="tcp",
    )
    started = labels(
        mcp_method_name="initialize", gen_ai_tool_name="", error_type="", network_transport="tcp"
    )
    assert samples[(OPERATION + "_count", ok)] == 1
    assert samples[(OPERATION + "_count", failed)] == 1
    assert samples[(OPERATION + "_count", started)] == 1
    assert samples[(OPERATION + "_bucket", labels(le="+Inf", **dict(ok)))] == 1
    assert session


async def test_refusals_before_dispatch_are_typed_by_status() -> None:
    app = make_app()
    refused = await request(app, "POST", headers={"content-type": "application/json"}, body=b"{}")
    assert refused.status >= 400
    samples = await scrape(app)
    types = {dict(labels)["error_type"] for labels in series(samples, OPERATION + "_count")}
    assert types == {f"http_{refused.status}"}


async def test_ten_thousand_made_up_tool_names_add_no_series() -> None:
    app = make_app(rate_limit_per_minute=0, rate_limit_per_hour=0)
    await call_tool(app, "echo", {"text": "x"})
    before = await scrape(app)
    rng = random.Random(18)
    for _ in range(10_000):
        name = "".join(rng.choices(string.ascii_letters + string.digits + "_-.", k=rng.randint(1, 64)))
        reply = await call_tool(app, name, {})
        assert reply.status == 200
    after = await scrape(app)
    for family in ("mcp_tool_calls_total", "mcp_tool_call_duration_seconds_count", OPERATION + "_count"):
        values = {
            dict(labels).get("tool", dict(labels).get("gen_ai_tool_name")) for labels in series(after, family)
        }
        assert values <= {"echo", "unknown", ""}, family
        assert len(series(after, family)) <= len(series(before, family)) + 1
    assert after[("mcp_tool_calls_total", labels(tool="unknown", status="tool_error"))] == 10_000
    assert len(after) < len(before) + 40  # one new label set per family at most, with its buckets


def test_rate_limited_principals_beyond_the_cap_share_one_label() -> None:
    metrics = Metrics()
    for index in range(MAX_PRINCIPAL_LABELS + 25):
        metrics.rate_limited_call(f"subject-{index}", "echo")
    metrics.rate_limited_call(None, "echo")
    principals = {
        sample.labels["principal"]
        for family in metrics.registry.collect()
        for sample in family.samples
        if sample.name == "mcp_rate_limited_calls_total"
    }
    assert len(principals) == MAX_PRINCIPAL_LABELS + 1
    assert "other" in principals and "subject-0" in principals and "anonymous" not in principals
    assert (
        metrics.registry.get_sample_value(
            "mcp_rate_limited_calls_total", {"principal": "other", "tool": "echo"}
        )
        == 26
    )


async def test_session_duration_is_observed_when_a_session_ends() -> None:
    now = [1000.0]
    ended: list[float] = []
    store = MemorySessionStore(idle_timeout=30, max_sessions=10, clock=lambda: now[0])
    store.on_end = ended.append
    assert await store.create("a", {})
    assert await store.create("b", {})
    now[0] += 12
    assert await store.delete("a")
    assert not await store.delete("a")
    assert ended == [12.0]
    now[0] += 100  # "b" expired 30 s after its last use, which was its creation
    assert await store.count() == 0
    assert ended == [12.0, 30.0]
    assert await store.create("c", {})
    now[0] += 31
    assert await store.get("c") is None
    assert ended == [12.0, 30.0, 30.0]


async def test_a_deleted_session_is_counted_in_the_histogram() -> None:
    app = make_app()
    session = (await initialize(app)).headers["mcp-session-id"]
    assert (await request(app, "DELETE", headers=session_headers(session))).status in (200, 204)
    samples = await scrape(app)
    assert samples[("mcp_server_session_duration_seconds_count", labels(network_transport="tcp"))] == 1


async def test_readiness_drain_and_build_series() -> None:
    app = make_app()
    samples = await scrape(app)
    assert samples[("mcp_ready", labels())] == 1
    assert samples[("mcp_readiness_check_up", labels(check="sessions"))] == 1
    assert samples[("mcp_draining", labels())] == 0
    assert ("process_start_time_seconds", labels()) in samples
    [build] = series(samples, "mcp_build_info")
    assert dict(build)["server"] == "ops-test"
    app.begin_drain()
    samples = await scrape(app)
    assert samples[("mcp_ready", labels())] == 0
    assert samples[("mcp_draining", labels())] == 1
