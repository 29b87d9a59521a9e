"""In-process TLS: both eras over https with a CA made here, mutual TLS, and reloads that drop
no connection."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from mcpserve.config import load_settings
from mcpserve.errors import ConfigError
from mcpserve.transports.http.tls import ReloadingTls
from tests.deploy.certs import TestCA, served_serial
from tests.deploy.mcp_client import ACCEPT, legacy_call, modern_call
from tests.deploy.serving import serving
from tests.support.processes import child_env, mcpserve_argv
from tests.support.servers import free_port
from tests.support.wire import initialize_request

pytestmark = pytest.mark.slow
TOOL = ("get_deployment_status", {"service": "checkout-api"})


@pytest.fixture
def ca(tmp_path: Path) -> TestCA:
    return TestCA(tmp_path)


def tls_env(ca: TestCA, port: int, **extra: str) -> dict[str, str]:
    server = ca.issue("server")
    return {
        "MCPSERVE_AUTH": "none",
        "MCPSERVE_HOST": "127.0.0.1",
        "MCPSERVE_PORT": str(port),
        "MCPSERVE_TLS_CERT_FILE": str(server.cert),
        "MCPSERVE_TLS_KEY_FILE": str(server.key),
        **extra,
    }


def test_a_client_trusting_the_ca_calls_a_tool_in_both_eras(ca: TestCA) -> None:
    port = free_port()
    trust = ca.client_context()
    with serving(port, scheme="https", probe={"verify": trust}, env=tls_env(ca, port)) as served:
        assert served.url.startswith("https://")
        for call in (modern_call, legacy_call):
            assert call(served.url, *TOOL, verify=trust)["isError"] is False
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            modern_call(served.url, *TOOL)  # the system trust store does not know our CA
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)  # plain HTTP is not served


def test_a_get_stream_over_tls_is_served_detached_and_ends_with_its_session(ca: TestCA) -> None:
    """The stream leaves its request for the TLS connection itself (detached.py); when its
    session is deleted it ends, and that connection serves the next request."""
    port = free_port()
    trust = ca.client_context()
    env = tls_env(ca, port, MCPSERVE_SESSION_SWEEP_INTERVAL="0.2")
    with (
        serving(port, scheme="https", probe={"verify": trust}, env=env) as served,
        httpx.Client(timeout=10, verify=trust) as http,
    ):
        opened = http.post(served.url, json=initialize_request(0, "2025-11-25"), headers={"accept": ACCEPT})
        headers = {"mcp-session-id": opened.headers["mcp-session-id"], "mcp-protocol-version": "2025-11-25"}
        with http.stream("GET", served.url, headers={**headers, "accept": "text/event-stream"}) as stream:
            assert stream.status_code == 200
            lines = stream.iter_lines()
            assert next(line for line in lines if line.startswith("retry:")) == "retry: 1000"
            with httpx.Client(timeout=10, verify=trust) as other:
                assert other.delete(served.url, headers=headers).status_code == 200
            # The rest of the priming event, then the end of the response: the iteration stops.
            assert [line for line in lines if line.strip()] == ["data: "]
        again = http.post(served.url, json=initialize_request(0, "2025-11-25"), headers={"accept": ACCEPT})
        assert again.status_code == 200
        assert http.get(f"{served.url.rsplit('/', 1)[0]}/health").status_code == 200


def test_mutual_tls_refuses_a_client_without_a_certificate(ca: TestCA) -> None:
    port = free_port()
    client = ca.issue("client", client=True)
    with_certificate = ca.client_context(client)
    env = tls_env(ca, port, MCPSERVE_TLS_CLIENT_CA_FILE=str(ca.cert))
    with serving(port, scheme="https", probe={"verify": with_certificate}, env=env) as served:
        for call in (modern_call, legacy_call):
            assert call(served.url, *TOOL, verify=with_certificate)["isError"] is False
        with pytest.raises(httpx.TransportError):
            modern_call(served.url, *TOOL, verify=ca.client_context())
        stranger = TestCA(ca.directory, "another CA").issue("stranger", client=True)
        with pytest.raises(httpx.TransportError):
            modern_call(served.url, *TOOL, verify=ca.client_context(stranger))


def replace(target: Path, source: Path) -> None:
    """Swap the file atomically, as a Secret volume update does."""
    temporary = target.with_suffix(".new")
    shutil.copy(source, temporary)
    os.replace(temporary, target)


def wait_for_serial(port: int, ca: TestCA, serial: int, deadline: float = 15.0) -> None:
    end = time.monotonic() + deadline
    while served_serial("127.0.0.1", port, ca) != serial:
        assert time.monotonic() < end, "the new certificate was not served in time"
        time.sleep(0.1)  # polling for the reload, not synchronisation


def test_certificates_reload_on_sighup_and_on_change_without_dropping_connections(ca: TestCA) -> None:
    port = free_port()
    env = tls_env(ca, port)
    cert, key = Path(env["MCPSERVE_TLS_CERT_FILE"]), Path(env["MCPSERVE_TLS_KEY_FILE"])
    trust = ca.client_context()
    with (
        serving(port, scheme="https", probe={"verify": trust}, env=env) as served,
        httpx.Client(verify=trust, timeout=10) as kept,
    ):
        original = served_serial("127.0.0.1", port, ca)
        assert kept.get(f"{served.base}/health").status_code == 200  # a connection opened before

        second = ca.issue("second")
        replace(cert, second.cert)
        replace(key, second.key)
        served.process.send_signal(signal.SIGHUP)
        wait_for_serial(port, ca, second.serial)
        assert kept.get(f"{served.base}/health").status_code == 200  # still the same connection

        third = ca.issue("third")
        replace(key, third.key)
        replace(cert, third.cert)  # no signal: the watcher sees the change
        wait_for_serial(port, ca, third.serial)
        assert modern_call(served.url, *TOOL, verify=trust)["isError"] is False
        assert kept.get(f"{served.base}/health").status_code == 200
        assert original != third.serial
    events = [line["event"] for line in served.lines if line.get("logger") == "mcpserve.tls"]
    assert events[:1] == ["TLS certificate reloaded (SIGHUP)"]
    assert "TLS certificate reloaded (files changed)" in events
    connections = {line.get("event") for line in served.lines}
    assert not any("Connection lost" in str(event) for event in connections)


def test_a_broken_pair_is_refused_and_the_current_certificate_kept(ca: TestCA, tmp_path: Path) -> None:
    server, other = ca.issue("server"), ca.issue("other")
    cert = tmp_path / "live.crt"
    shutil.copy(server.cert, cert)
    tls = ReloadingTls(cert, server.key)
    assert not tls.changed()
    replace(cert, other.cert)  # the key no longer matches
    assert tls.changed()
    assert tls.reload("test") is False
    assert not tls.changed()  # the same broken files are not retried every poll
    replace(cert, server.cert)
    assert tls.reload("test") is True
    cert.unlink()  # a Secret volume mid-update: the file is gone for a moment
    assert tls.changed()
    assert tls.reload("test") is False


def test_mutual_tls_reloads_the_client_ca_too(ca: TestCA, tmp_path: Path) -> None:
    server = ca.issue("server")
    bundle = tmp_path / "clients.pem"
    shutil.copy(ca.cert, bundle)
    tls = ReloadingTls(server.cert, server.key, bundle)
    replace(bundle, TestCA(tmp_path, "next CA").cert)
    assert tls.changed()
    assert tls.reload("test") is True
    assert len(tls.context.get_ca_certs()) == 2  # added, never removed (a restart removes one)


def test_a_bad_certificate_stops_the_start(ca: TestCA, tmp_path: Path) -> None:
    server, other = ca.issue("server"), ca.issue("other")
    with pytest.raises(ConfigError, match=r"^MCPSERVE_TLS_CERT_FILE: cannot load"):
        ReloadingTls(server.cert, other.key)
    garbage = tmp_path / "ca.pem"
    garbage.write_text("not a certificate\n")
    with pytest.raises(ConfigError, match=r"^MCPSERVE_TLS_CLIENT_CA_FILE: cannot load"):
        ReloadingTls(server.cert, server.key, garbage)


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"MCPSERVE_TLS_CERT_FILE": "CERT"}, "MCPSERVE_TLS_KEY_FILE"),
        ({"MCPSERVE_TLS_KEY_FILE": "KEY"}, "MCPSERVE_TLS_CERT_FILE"),
        ({"MCPSERVE_TLS_CLIENT_CA_FILE": "CA"}, "MCPSERVE_TLS_CLIENT_CA_FILE"),
        (
            {"MCPSERVE_TLS_CERT_FILE": "CERT", "MCPSERVE_TLS_KEY_FILE": "KEY", "MCPSERVE_TRANSPORT": "stdio"},
            "MCPSERVE_TLS_CERT_FILE",
        ),
        (
            {"MCPSERVE_TLS_CERT_FILE": "/nonexistent.pem", "MCPSERVE_TLS_KEY_FILE": "KEY"},
            "MCPSERVE_TLS_CERT_FILE",
        ),
    ],
)
def test_incomplete_tls_settings_are_refused(
    ca: TestCA, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], variable: str
) -> None:
    server = ca.issue("server")
    for key in list(os.environ):
        if key.startswith("MCPSERVE_"):
            monkeypatch.delenv(key)
    paths = {"CERT": str(server.cert), "KEY": str(server.key), "CA": str(ca.cert)}
    for name, value in env.items():
        monkeypatch.setenv(name, paths.get(value, value))
    with pytest.raises(ConfigError) as error:
        load_settings({"auth": "none"})
    assert error.value.variable == variable


def health(env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        mcpserve_argv("health"), env=child_env(**env), capture_output=True, timeout=30, check=False
    )


def test_mcpserve_health_probes_https_and_the_metrics_port(ca: TestCA) -> None:
    port, metrics = free_port(), free_port()
    env = tls_env(ca, port, MCPSERVE_TLS_CLIENT_CA_FILE=str(ca.cert))
    client = ca.client_context(ca.issue("client", client=True))
    with serving(port, scheme="https", probe={"verify": client}, env=env):
        probe = health(env)
        # Mutual TLS on the main port: the probe has no client certificate.
        assert probe.returncode == 1, probe
        assert f"https://127.0.0.1:{port}/health" in probe.stderr.decode()
    env = tls_env(ca, port, MCPSERVE_METRICS_PORT=str(metrics))
    with serving(port, scheme="https", probe={"verify": ca.client_context()}, env=env):
        probe = health(env)
        assert probe.returncode == 0, probe
        assert probe.stdout.decode().strip() == f"http://127.0.0.1:{metrics}/health: 200"
    env = tls_env(ca, port)
    with serving(port, scheme="https", probe={"verify": ca.client_context()}, env=env):
        probe = health(env)
        assert probe.returncode == 0, probe
        assert probe.stdout.decode().strip() == f"https://127.0.0.1:{port}/health: 200"
