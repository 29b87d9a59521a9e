"""The console's bounded memory and its formatting, with a clock the test controls."""

from __future__ import annotations

from mcpserve.admin.page import format_duration, format_seconds
from mcpserve.observability.metrics import Metrics
from mcpserve.observability.recent import LIMITED_WINDOW, RecentActivity


def test_limited_principals_expire_and_a_flood_keeps_the_newest() -> None:
    now = [1000.0]
    recent = RecentActivity(clock=lambda: now[0])
    recent.limited("alice")
    recent.limited(None)
    recent.limited("alice")
    assert [(p["principal"], p["refusals"]) for p in recent.currently_limited()] == [
        ("alice", 2),
        ("anonymous", 1),
    ]
    now[0] += LIMITED_WINDOW + 1
    assert recent.currently_limited() == []
    for index in range(1500):  # more distinct callers than are kept, all within the window
        recent.limited(f"caller-{index}")
    kept = recent.currently_limited()
    assert len(kept) == 1000
    assert kept[0]["principal"] == "caller-1499" and kept[-1]["principal"] == "caller-500"


def test_long_names_are_cut_and_the_ring_is_bounded() -> None:
    recent = RecentActivity(clock=lambda: 5.0)
    for index in range(150):
        recent.error(f"r{index}", "p" * 500, "tools/call", "t" * 500, 200, "tool_error")
    errors = recent.recent_errors()
    assert len(errors) == 100 and errors[0]["request_id"] == "r149"
    assert len(errors[0]["principal"]) == 200 and len(errors[0]["tool"]) == 200


def test_the_operation_histogram_merges_eras_and_statuses() -> None:
    metrics = Metrics()
    metrics.request("tools/call", "modern", 200, "echo", "", 0.015)
    metrics.request("tools/call", "legacy", 200, "echo", "", 0.5)
    metrics.request("tools/call", "modern", 429, "echo", "rate_limited", 0.001)
    value = metrics.registry.get_sample_value
    labels = {
        "mcp_method_name": "tools/call",
        "gen_ai_tool_name": "echo",
        "error_type": "",
        "network_transport": "tcp",
    }
    assert value("mcp_server_operation_duration_seconds_count", labels) == 2
    assert value("mcp_server_operation_duration_seconds_sum", labels) == 0.515
    assert value("mcp_server_operation_duration_seconds_bucket", {**labels, "le": "0.02"}) == 1
    assert value("mcp_requests_total", {"method": "tools/call", "era": "modern", "status": "200"}) == 1
    assert value("mcp_requests_total", {"method": "tools/call", "era": "modern", "status": "429"}) == 1


def test_figures_read_well() -> None:
    assert format_seconds(None) == "\u2013"
    assert format_seconds(0.0042) == "4.2 ms"
    assert format_seconds(2.5) == "2.50 s"


def test_uptime_reads_well() -> None:
    assert format_duration(59) == "0m 59s"
    assert format_duration(3 * 3600 + 125) == "3h 2m 5s"
    assert format_duration(2 * 86400 + 3600 + 60) == "2d 1h 1m"
