"""The alert rules are valid and every alert has unit tests that pass (promtool, from Debian's
prometheus package; scripts/deploy-tools.sh installs it)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

RULES_DIR = Path(__file__).resolve().parents[2] / "deploy" / "observability" / "prometheus"
RULES = RULES_DIR / "mcpserve-alerts.yml"
RULE_TESTS = RULES_DIR / "mcpserve-alerts.test.yml"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    found = shutil.which("promtool")
    assert found is not None, "promtool is missing: make deploy-tools installs it"
    return subprocess.run(
        [found, *args], cwd=RULES_DIR, capture_output=True, text=True, timeout=120, check=False
    )


def alerts() -> list[dict[str, object]]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def test_promtool_checks_the_rules_and_the_example_configuration() -> None:
    checked = promtool("check", "rules", RULES.name)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(alerts())} rules found" in checked.stdout
    config = promtool("check", "config", "prometheus.yml")
    assert config.returncode == 0, config.stdout + config.stderr


def test_promtool_unit_tests_pass() -> None:
    tested = promtool("test", "rules", RULE_TESTS.name)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_every_alert_has_a_runbook_and_unit_tests_that_fire_it_and_keep_it_quiet() -> None:
    names = {str(rule["alert"]) for rule in alerts()}
    assert names == {
        "MCPServeHighErrorRatio",
        "MCPServeToolLatencyHigh",
        "MCPServeRateLimitRefusalsSpike",
        "MCPServeNotReady",
        "MCPServeReplicaRestarting",
        "MCPServeRedisUnreachable",
    }
    for rule in alerts():
        annotations = rule["annotations"]
        assert isinstance(annotations, dict)
        assert annotations["runbook"].strip() and "\n" not in annotations["runbook"].strip()
        assert annotations["runbook_url"] == f"docs/observability.md#{str(rule['alert']).lower()}"
    cases = [
        case for test in yaml.safe_load(RULE_TESTS.read_text())["tests"] for case in test["alert_rule_test"]
    ]
    for name in names:
        mine = [case for case in cases if case["alertname"] == name]
        assert any(case["exp_alerts"] for case in mine), f"{name}: no test where it fires"
        assert any(not case["exp_alerts"] for case in mine), f"{name}: no test where it stays quiet"


def test_the_runbook_anchors_exist_in_the_docs() -> None:
    docs = (RULES_DIR.parents[2] / "docs" / "observability.md").read_text()
    for rule in alerts():
        assert f"### {rule['alert']}" in docs
