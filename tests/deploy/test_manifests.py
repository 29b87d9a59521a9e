"""deploy/: Kubernetes manifests, the compose stack and the Containerfile, validated offline
with the tools made for each (kubernetes-validate, the compose-spec schema, promtool, hadolint,
yamllint), and the properties the issue asks of them checked on what kustomize renders."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from mcpserve.config import ENV_PREFIX, Settings, _env_names, _file_twins, load_settings
from tests.support.processes import ROOT

DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
BIN = Path(sys.executable).parent
OVERLAYS = ("dev", "production")


# Settings the scale-out issue adds (MCPSERVE_STATE, MCPSERVE_DRAIN_DELAY); written against
# already, so these manifests work as soon as it lands. Drop a name here once config.py has it.
def newest_kubernetes_versions(count: int = 2) -> list[str]:
    """The newest Kubernetes versions whose strict schemas kubernetes-validate ships."""
    spec = importlib.util.find_spec("kubernetes_validate")
    assert spec is not None and spec.origin is not None, "kubernetes-validate is not installed (dev extra)"
    schemas = Path(spec.origin).parent / "kubernetes-json-schema"
    found = {
        m.group(1) for p in schemas.iterdir() if (m := re.fullmatch(r"v(\d+\.\d+\.\d+)-local-strict", p.name))
    }
    return sorted(found, key=lambda v: tuple(map(int, v.split("."))))[-count:]


def run(*command: str | Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [str(c) for c in command], input=stdin, capture_output=True, check=False, timeout=120
    )


@cache
def rendered(overlay: str) -> bytes:
    if shutil.which("kubectl") is None:
        pytest.fail("kubectl is missing: it renders the kustomizations (it comes with this kind of machine)")
    result = run("kubectl", "kustomize", K8S / "overlays" / overlay)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout


def objects(overlay: str) -> dict[tuple[str, str], Any]:
    return {(o["kind"], o["metadata"]["name"]): o for o in yaml.safe_load_all(rendered(overlay))}


def test_two_kubernetes_versions_are_checked() -> None:
    versions = newest_kubernetes_versions()
    assert len(versions) == 2
    assert tuple(map(int, versions[0].split(".")[:2])) >= (1, 33)


@pytest.mark.parametrize("version", newest_kubernetes_versions())
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_passes_kubernetes_validate_strict(overlay: str, version: str) -> None:
    result = run(
        BIN / "kubernetes-validate", "--strict", "--quiet", "-k", version, "-", stdin=rendered(overlay)
    )
    assert result.returncode == 0, (result.stdout + result.stderr).decode()


def test_kubernetes_validate_strict_catches_a_typo() -> None:
    broken = rendered("production").replace(b"maxUnavailable: 0", b"maxUnavailabel: 0")
    result = run(BIN / "kubernetes-validate", "--strict", "--quiet", "-", stdin=broken)
    assert result.returncode == 1
    assert b"maxUnavailabel" in result.stdout + result.stderr


def test_the_production_deployment_has_what_a_rollout_needs() -> None:
    found = objects("production")
    deployment = found["Deployment", "mcpserve"]["spec"]
    pod = deployment["template"]["spec"]
    [container] = pod["containers"]
    settings = next(
        v for (kind, name), v in found.items() if kind == "ConfigMap" and name.startswith("mcpserve-settings")
    )
    drain = float(settings["data"]["MCPSERVE_DRAIN_TIMEOUT"])
    pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert deployment["replicas"] == 3
    assert deployment["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert pod["terminationGracePeriodSeconds"] > drain + pre_stop
    assert pod["enableServiceLinks"] is False
    assert container["startupProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert {"requests", "limits"} <= container["resources"].keys()
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    [secrets] = [v for v in pod["volumes"] if "secret" in v]
    assert secrets["secret"]["defaultMode"] == 0o440  # no world-readable warning at start
    keys = {"hostname": "kubernetes.io/hostname", "zone": "topology.kubernetes.io/zone"}
    assert {c["topologyKey"] for c in pod["topologySpreadConstraints"]} == set(keys.values())
    assert "MCPSERVE_REDIS_URL_FILE" in {e["name"] for e in container["env"]}
    for kind in ("HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy", "Service"):
        assert (kind, "mcpserve") in found, kind
    assert found["HorizontalPodAutoscaler", "mcpserve"]["spec"]["minReplicas"] == 3


def test_the_servicemonitor_component_scrapes_the_metrics_port(tmp_path: Path) -> None:
    overlay = tmp_path / "with-monitoring"
    overlay.mkdir()
    production = os.path.relpath(K8S / "overlays" / "production", overlay)  # kustomize wants relative
    component = os.path.relpath(K8S / "components" / "servicemonitor", overlay)
    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: mcpserve\n"
        f"resources: [{production}]\ncomponents: [{component}]\n"
    )
    result = run("kubectl", "kustomize", overlay)
    assert result.returncode == 0, result.stderr.decode()
    found = {(o["kind"], o["metadata"]["name"]): o for o in yaml.safe_load_all(result.stdout)}
    monitor = found["ServiceMonitor", "mcpserve"]
    service = found["Service", "mcpserve"]
    assert monitor["metadata"]["namespace"] == "mcpserve"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert {e["port"] for e in monitor["spec"]["endpoints"]} <= {p["name"] for p in service["spec"]["ports"]}


def known_variables() -> set[str]:
    names = {v for field in Settings.model_fields for v in _env_names(field)}
    return names | {twin for pairs in _file_twins().values() for _, twin in pairs}


def deployment_variables() -> dict[str, set[str]]:
    """Every mcpserve variable set anywhere in deploy/, by file."""
    pattern = re.compile(rf"\b((?:{ENV_PREFIX}|MCP_API_KEYS)[A-Z0-9_]*)\b")
    found = {}
    for path in DEPLOY.rglob("*"):
        if path.suffix in (".yaml", ".yml") or path.name == "Containerfile":
            names = {
                m
                for m in pattern.findall(path.read_text())
                if not m.startswith(
                    ("MCPSERVE_EDGE", "MCPSERVE_UPSTREAMS", "MCPSERVE_METRICS_CLIENTS", "MCPSERVE_IMAGE")
                )
            }
            if names:
                found[str(path.relative_to(ROOT))] = names
    return found


def test_every_variable_the_deployments_set_is_a_setting() -> None:
    found = deployment_variables()
    assert {
        "deploy/compose/compose.yaml",
        "deploy/k8s/base/kustomization.yaml",
        "deploy/k8s/base/deployment.yaml",
    } <= found.keys()
    known = known_variables()
    for path, names in found.items():
        assert names <= known, (path, names - known)


def test_compose_passes_the_compose_spec_schema(tmp_path: Path) -> None:
    compose = DEPLOY / "compose" / "compose.yaml"
    result = run(BIN / "check-jsonschema", "--builtin-schema", "vendor.compose-spec", compose)
    assert result.returncode == 0, (result.stdout + result.stderr).decode()
    broken = tmp_path / "compose.yaml"
    broken.write_text(
        compose.read_text().replace("    stop_grace_period: 40s", "    stop_grace_periods: 40s")
    )
    result = run(BIN / "check-jsonschema", "--builtin-schema", "vendor.compose-spec", broken)
    assert result.returncode == 1, "the schema check must catch a misspelt key"


def test_the_compose_stack_has_what_the_issue_asks() -> None:
    stack = yaml.safe_load((DEPLOY / "compose" / "compose.yaml").read_text())
    services = stack["services"]
    assert services["mcpserve"]["deploy"]["replicas"] == 3
    assert {"nginx", "redis", "postgres", "demo-loader"} <= services.keys()
    assert services["mcpserve"]["depends_on"]["demo-loader"]["condition"] == "service_completed_successfully"
    assert services["prometheus"]["profiles"] == services["grafana"]["profiles"] == ["monitoring"]
    environment = services["mcpserve"]["environment"]
    for variable in ("MCP_API_KEYS_FILE", "MCPSERVE_REDIS_URL_FILE", "MCPSERVE_DATABASE_URL_FILE"):
        secret = environment[variable].removeprefix("/run/secrets/")
        assert secret in services["mcpserve"]["secrets"] and secret in stack["secrets"]
    assert not any("PASSWORD=" in str(v) or "://" in str(v) for v in environment.values())


def test_prometheus_config_passes_promtool() -> None:
    result = run("promtool", "check", "config", DEPLOY / "compose" / "prometheus.yml")
    assert result.returncode == 0, (result.stdout + result.stderr).decode()


def test_containerfile_is_hadolint_clean_and_has_its_properties() -> None:
    containerfile = DEPLOY / "container" / "Containerfile"
    result = run(BIN / "hadolint", containerfile)
    assert result.returncode == 0, result.stdout.decode()
    text = containerfile.read_text()
    assert len(re.findall(r"^FROM ", text, re.MULTILINE)) == 2  # wheel and venv, then runtime
    assert re.search(r"^USER \d+:\d+$", text, re.MULTILINE)  # numeric: runAsNonRoot can check it
    assert re.search(r'^HEALTHCHECK .* CMD \["mcpserve", "health"\]$', text, re.MULTILINE)
    assert "STOPSIGNAL SIGTERM" in text
    assert 'ENTRYPOINT ["mcpserve", "serve"]' in text
    assert "curl" not in text.replace("without curl", "")


def test_hadolint_catches_a_bad_containerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Containerfile"
    bad.write_text("FROM debian:latest\nRUN apt-get install -y curl\n")
    result = run(BIN / "hadolint", bad)
    assert result.returncode == 1
    assert b"DL3007" in result.stdout


def test_yamllint_is_clean() -> None:
    result = run(BIN / "yamllint", "-s", "-c", ROOT / ".yamllint", DEPLOY, ROOT / ".yamllint")
    assert result.returncode == 0, result.stdout.decode()


def test_make_secrets_writes_every_compose_secret_in_a_form_mcpserve_accepts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    compose = tmp_path / "compose"
    shutil.copytree(DEPLOY / "compose", compose, ignore=shutil.ignore_patterns("secrets"))
    env = {**os.environ, "MCPSERVE": str(BIN / "mcpserve")}
    result = subprocess.run(
        [compose / "make-secrets.sh"], env=env, capture_output=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr.decode()
    stack = yaml.safe_load((compose / "compose.yaml").read_text())
    for name, secret in stack["secrets"].items():
        path = compose / secret["file"]
        assert path.stat().st_mode & 0o077 == 0, name  # 0600: no world-readable warning
        assert path.read_text().strip(), name
    before = {p.name: p.read_text() for p in (compose / "secrets").iterdir()}
    subprocess.run([compose / "make-secrets.sh"], env=env, capture_output=True, check=True, timeout=60)
    assert {p.name: p.read_text() for p in (compose / "secrets").iterdir()} == before  # kept
    for key in list(os.environ):
        if key.startswith("MCPSERVE_"):
            monkeypatch.delenv(key)
    for variable, target in stack["services"]["mcpserve"]["environment"].items():
        if variable.endswith("_FILE"):
            monkeypatch.setenv(variable, str(compose / "secrets" / target.removeprefix("/run/secrets/")))
    settings = load_settings({"auth": "keys"})
    assert len(settings.api_keys) == 1 and len(settings.request_state_keys) == 1
    assert settings.database_url is not None and settings.database_url.startswith("postgresql://mcp_reader:")
    assert settings.notices == ()
