"""The Grafana dashboard is provisionable, and every metric and label that it and the alert
rules use is present in /metrics of a real server after a short run of traffic."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.observability.live import drive_traffic, live_server, scrape
from tests.observability.promql import names_in

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "observability"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "mcpserve.json"
RULES = DEPLOY / "prometheus" / "mcpserve-alerts.yml"
# Labels Prometheus itself attaches to every scraped series, not exported by the target.
TARGET_LABELS = frozenset({"job", "instance"})


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def panels() -> list[dict[str, Any]]:
    return [panel for panel in dashboard()["panels"] if panel["type"] != "row"]


def dashboard_exprs() -> list[str]:
    return [target["expr"] for panel in panels() for target in panel["targets"]]


def rule_exprs() -> list[str]:
    return [rule["expr"] for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def test_promql_names_are_found() -> None:
    metrics, labels = names_in(
        'histogram_quantile(0.99, sum by (tool, le) (rate(a_bucket{job=~"$job", x!="y"}[5m]))) > 2 '
        "unless on (job) (b == 1) and changes(c[1h]) > 2^30"
    )
    assert metrics == {"a_bucket", "b", "c"}
    assert labels == {"tool", "le", "job", "x"}


def test_the_dashboard_is_provisionable_with_a_datasource_variable() -> None:
    data = dashboard()
    assert data["uid"] == "mcpserve-overview" and data["id"] is None
    variables = {v["name"]: v for v in data["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [panel["id"] for panel in data["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels():
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"
            assert 'job=~"$job"' in target["expr"], (panel["title"], target["expr"])
        position = panel["gridPos"]
        assert position["x"] + position["w"] <= 24
    titles = " ".join(panel["title"] for panel in panels())
    for wanted in (
        "era and method",
        "p50 / p95 / p99 by tool",
        "429s by principal and tool",
        "sessions",
        "In flight",
        "Draining",
        "Readiness",
    ):
        assert wanted.lower() in titles.lower(), wanted
    provider = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "dashboards" / "mcpserve.yml").read_text()
    )
    assert provider["providers"][0]["type"] == "file"
    source = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )
    assert source["datasources"][0]["type"] == "prometheus"


@pytest.mark.slow
def test_every_series_used_by_the_dashboard_and_rules_is_exported(tmp_path: Path) -> None:
    with live_server(tmp_path) as live:
        drive_traffic(live)
        exposition = scrape(live)
    exported: dict[str, set[str]] = {}  # sample name -> the label names its series carry
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            exported.setdefault(sample.name, set()).update(sample.labels)
    for expr in [*dashboard_exprs(), *rule_exprs()]:
        metrics, labels = names_in(expr)
        assert metrics, expr
        missing = sorted(metrics - set(exported))
        assert not missing, f"{missing} used but not exported: {expr}"
        # Every label the expression matches or groups by is carried by one of its metrics.
        carried = set().union(*(exported[m] for m in metrics)) | TARGET_LABELS
        assert labels <= carried, (sorted(labels - carried), expr)
    for panel in panels():
        for target in panel["targets"]:
            carried = set().union(*(exported[m] for m in names_in(target["expr"])[0]))
            legend = set(re.findall(r"\{\{(\w+)\}\}", target["legendFormat"]))
            assert legend <= carried | TARGET_LABELS, (panel["title"], legend - carried)
    # The series the traffic must have created, with the labels the panels group by.
    assert {"principal", "tool"} <= exported["mcp_rate_limited_calls_total"]
    assert {"mcp_method_name", "gen_ai_tool_name", "error_type", "network_transport", "le"} <= exported[
        "mcp_server_operation_duration_seconds_bucket"
    ]
    assert "check" in exported["mcp_readiness_check_up"]
    redis = [
        line for line in exposition.splitlines() if line.startswith('mcp_readiness_check_up{check="redis"}')
    ]
    assert redis == ['mcp_readiness_check_up{check="redis"} 1.0']
