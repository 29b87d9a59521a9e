"""Kubernetes service links of Services named `mcpserve` and `mcp` neither stop nor configure us."""

from __future__ import annotations

import os

import orjson
import pytest

from mcpserve.config import load_settings
from mcpserve.config_sources import is_service_link, service_links
from mcpserve.errors import ConfigError
from tests.deploy.mcp_client import legacy_call, modern_call
from tests.deploy.serving import serving
from tests.support.servers import free_port


def links(service: str, ip: str, port: int, port_name: str = "http") -> dict[str, str]:
    """What the kubelet injects for a Service (name upper-cased, '-' as '_') with one TCP port."""
    name = service.upper().replace("-", "_")
    detail = f"{name}_PORT_{port}_TCP"
    return {
        f"{name}_SERVICE_HOST": ip,
        f"{name}_SERVICE_PORT": str(port),
        f"{name}_SERVICE_PORT_{port_name.upper()}": str(port),
        f"{name}_PORT": f"tcp://{ip}:{port}",
        detail: f"tcp://{ip}:{port}",
        f"{detail}_PROTO": "tcp",
        f"{detail}_PORT": str(port),
        f"{detail}_ADDR": ip,
    }


SERVICES = {
    **links("mcpserve", "10.96.0.12", 8000),
    **links("mcp", "10.96.0.13", 8000),
    **links("mcpserve-metrics", "10.96.0.14", 9090, "metrics"),
    **links("mcpserve-redis", "fd00::15", 6379, "redis"),
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.upper().startswith("MCPSERVE_") or key.upper() in ("PORT", "DATABASE_URL"):
            monkeypatch.delenv(key)


def test_service_links_are_ignored_and_named_once(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in SERVICES.items():
        monkeypatch.setenv(key, value)
    settings = load_settings({"auth": "none"})
    assert settings.port == 8000
    assert settings.metrics_port is None  # MCPSERVE_METRICS_PORT=tcp://... configures nothing
    [(level, message)] = settings.notices
    assert level == "info"
    assert message.startswith("ignored Kubernetes service-link variables: MCPSERVE_METRICS_PORT, ")
    assert "MCPSERVE_PORT_8000_TCP_ADDR" in message
    assert "10.96" not in message


def test_real_settings_beside_service_links_still_apply(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in SERVICES.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("PORT", "9001")
    monkeypatch.setenv("MCPSERVE_METRICS_PORT", "9090")
    settings = load_settings({"auth": "none"})
    assert (settings.port, settings.metrics_port) == (9001, 9090)
    monkeypatch.setenv("MCPSERVE_PORT", "9002")  # a number is a setting, not a link
    assert load_settings({"auth": "none"}).port == 9002


def test_a_typo_among_service_links_is_still_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in SERVICES.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MCPSERVE_TRUSTED_PROXY", "10.0.0.0/8")
    with pytest.raises(ConfigError, match="did you mean MCPSERVE_TRUSTED_PROXIES"):
        load_settings({"auth": "none"})


@pytest.mark.parametrize(
    ("name", "value", "link"),
    [
        ("MCPSERVE_PORT", "tcp://10.0.0.1:8000", True),
        ("MCPSERVE_PORT", "udp://[fd00::1]:53", True),
        ("PORT", "tcp://10.0.0.1:8000", True),
        ("MCPSERVE_PORT", "8000", False),
        ("MCPSERVE_PORT", "tcp://example.com:8000", False),
        ("MCPSERVE_SERVICE_HOST", "10.0.0.1", True),
        ("MCPSERVE_SERVICE_HOST", "", True),
        ("MCPSERVE_SERVICE_HOST", "not-an-ip", False),
        ("MCPSERVE_SERVICE_PORT_HTTP", "8000", True),
        ("MCPSERVE_SERVICE_PORT", "http", False),
        ("MCPSERVE_PORT_8000_SCTP_ADDR", "10.0.0.1", True),
        ("MCPSERVE_PORTS_8000_TCP", "x", False),
        ("MCPSERVE_HOST", "10.0.0.1", False),
    ],
)
def test_the_shape_of_a_service_link(name: str, value: str, link: bool) -> None:
    assert is_service_link(name, value) is link


def test_only_our_prefix_and_port_are_considered() -> None:
    found = service_links({"MCP_PORT": "tcp://10.0.0.1:1", "PORT": "tcp://10.0.0.1:1"}, ("MCPSERVE_",))
    assert found == ["PORT"]


@pytest.mark.slow
def test_mcpserve_serve_starts_and_answers_with_service_links() -> None:
    """The first Kubernetes deployment: a Service named `mcpserve` (and `mcp`) in the namespace,
    the port from PORT as the container's entrypoint sets it."""
    port = free_port()
    with serving(
        port, "--auth", "none", "--host", "127.0.0.1", env={**SERVICES, "PORT": str(port)}
    ) as served:
        for call in (modern_call, legacy_call):
            result = call(served.url, "get_deployment_status", {"service": "checkout-api"})
            assert result["isError"] is False, result
    ignored = [line for line in served.lines if line["event"].startswith("ignored Kubernetes service-link")]
    assert len(ignored) == 1, ignored
    assert "MCPSERVE_SERVICE_HOST" in ignored[0]["event"]
    assert b"MCP_SERVICE_HOST" not in orjson.dumps(ignored)  # not ours: never looked at
