"""deploy/nginx and deploy/caddy: they validate, and a replica that refuses connections costs
no request through either, in both policies."""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.deploy.mcp_client import legacy_call, modern_call
from tests.deploy.serving import Served, serving
from tests.support.edge import (
    NGINX,
    NGINX_POLICIES,
    caddy_command,
    caddy_env,
    nginx_command,
    nginx_dir,
    running,
)
from tests.support.processes import ROOT
from tests.support.servers import free_port
from tests.support.wire import modern_request

pytestmark = pytest.mark.slow
POLICIES = ("round-robin", "session-hash")
TOOL = ("get_deployment_status", {"service": "checkout-api"})


@pytest.mark.parametrize("policy", POLICIES)
def test_nginx_t_passes_with_loopback_ports(tmp_path: Path, policy: str) -> None:
    directory = nginx_dir(tmp_path, "127.0.0.1:18088", ["127.0.0.1:18091", "127.0.0.1:18092"])
    result = subprocess.run(nginx_command(directory, policy, test=True), capture_output=True, check=False)
    assert result.returncode == 0, result.stderr.decode()


@pytest.mark.parametrize("policy", POLICIES)
def test_nginx_t_passes_on_the_files_as_shipped(tmp_path: Path, policy: str) -> None:
    """The committed upstreams.conf names `mcpserve` (compose's service): resolve it to loopback
    in a private mount namespace so nginx -t checks the files exactly as shipped."""
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost mcpserve\n")
    prefix = tmp_path / "prefix"
    prefix.mkdir()
    check = f"nginx -t -q -p {prefix}/ -c {NGINX / NGINX_POLICIES[policy]}"
    result = subprocess.run(
        ["unshare", "-m", "sh", "-c", f"mount --bind {hosts} /etc/hosts && {check}"],
        capture_output=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()


def test_nginx_t_catches_a_broken_config(tmp_path: Path) -> None:
    directory = nginx_dir(tmp_path, "127.0.0.1:18088", ["127.0.0.1:18091"])
    (directory / "mcpserve.conf").write_text(
        (NGINX / "mcpserve.conf").read_text().replace("proxy_buffering off;", "proxy_buffering of;")
    )
    result = subprocess.run(nginx_command(directory, test=True), capture_output=True, check=False)
    assert result.returncode == 1
    assert b"proxy_buffering" in result.stderr


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("upstreams", [(), ("127.0.0.1:18091", "127.0.0.1:18092")])
def test_caddy_validate_passes(tmp_path: Path, policy: str, upstreams: tuple[str, ...]) -> None:
    env = caddy_env(tmp_path, "http://127.0.0.1:18089", upstreams)
    if not upstreams:  # the defaults, as shipped
        del env["MCPSERVE_EDGE_ADDRESS"], env["MCPSERVE_UPSTREAMS"]
    result = subprocess.run(caddy_command(policy, validate=True), env=env, capture_output=True, check=False)
    assert result.returncode == 0, result.stderr.decode()[-500:]
    assert b"Valid configuration" in result.stdout + result.stderr


@pytest.fixture(scope="module")
def replica() -> Iterator[Served]:
    port = free_port()
    env = {
        "MCPSERVE_AUTH": "none",
        "MCPSERVE_TRUSTED_PROXIES": "127.0.0.1/32",
        "MCPSERVE_RATE_LIMIT_PER_MINUTE": "0",
    }
    with serving(port, "--host", "127.0.0.1", "--port", str(port), env=env) as served:
        yield served


def calls_through(url: str) -> None:
    """Enough calls that round-robin offers every one of them the refusing replica too."""
    for _ in range(4):
        assert modern_call(url, *TOOL)["isError"] is False
        assert legacy_call(url, *TOOL)["isError"] is False


@pytest.mark.parametrize("policy", POLICIES)
def test_nginx_a_refusing_replica_costs_nothing(replica: Served, tmp_path: Path, policy: str) -> None:
    port, refused = free_port(), free_port()  # nothing listens on `refused`
    live = replica.base.removeprefix("http://")
    directory = nginx_dir(tmp_path, f"127.0.0.1:{port}", [f"127.0.0.1:{refused}", live])
    edge = f"http://127.0.0.1:{port}"
    with running(nginx_command(directory, policy), f"{edge}/health", log=tmp_path / "nginx.log"):
        calls_through(f"{edge}/mcp")
        assert httpx.get(f"{edge}/metrics", timeout=5).status_code == 200  # from loopback
        outside = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"))
        with outside:
            assert outside.get(f"{edge}/metrics", timeout=5).status_code == 403
            assert outside.get(f"{edge}/health", timeout=5).status_code == 200


@pytest.mark.parametrize("policy", POLICIES)
def test_caddy_a_refusing_replica_costs_nothing(replica: Served, tmp_path: Path, policy: str) -> None:
    if shutil.which("caddy") is None:
        pytest.fail("caddy is not installed (make deploy-tools installs it)")
    port, refused = free_port(), free_port()
    live = replica.base.removeprefix("http://")
    edge = f"http://127.0.0.1:{port}"
    env = caddy_env(tmp_path, edge, [f"127.0.0.1:{refused}", live])
    with running(caddy_command(policy), f"{edge}/health", env=env, log=tmp_path / "caddy.log"):
        calls_through(f"{edge}/mcp")
        assert httpx.get(f"{edge}/metrics", timeout=5).status_code == 200
        outside = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"))
        with outside:
            assert outside.get(f"{edge}/metrics", timeout=5).status_code == 403


@pytest.fixture(scope="module")
def holding_replica() -> Iterator[Served]:
    """A replica whose `hold_streaming` tool sends a progress event, then waits for the test."""
    port = free_port()
    env = {"MCPSERVE_AUTH": "none", "MCPSERVE_RATE_LIMIT_PER_MINUTE": "0"}
    app = str(ROOT / "tests" / "ops" / "drain_app.py")
    with serving(port, app, "--host", "127.0.0.1", "--port", str(port), env=env) as served:
        yield served


def streamed_through(url: str) -> list[str]:
    """A tools/call whose progress event must arrive while the tool still waits: a proxy that
    held the stream back would deliver nothing until the tool returned, and the call would time
    out (the tool returns only after the event was read). mcpserve also sends
    `X-Accel-Buffering: no` and Caddy flushes event streams by itself; the configs turn
    buffering off regardless, for every response."""
    with socket.create_server(("127.0.0.1", 0)) as gate:
        gate.settimeout(10)
        body = modern_request(
            1,
            "tools/call",
            {"name": "hold_streaming", "arguments": {"gate": gate.getsockname()[1], "index": 7}},
            progress_token=7,
        )
        headers = {
            "accept": "application/json, text/event-stream",
            "mcp-protocol-version": "2026-07-28",
            "mcp-method": "tools/call",
            "mcp-name": "hold_streaming",
        }
        methods = []
        with httpx.stream("POST", url, json=body, headers=headers, timeout=10) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            for line in response.iter_lines():
                if not line.startswith("data:"):
                    continue
                message = orjson.loads(line[5:])
                methods.append(message.get("method", "result" if "result" in message else "error"))
                if methods == ["notifications/progress"]:  # the tool is still held: release it
                    connection, _ = gate.accept()
                    with connection:
                        assert connection.recv(16) == b"7\n"
                        connection.sendall(b"go\n")
        return methods


@pytest.mark.parametrize("policy", POLICIES)
def test_nginx_streams_events_unbuffered(holding_replica: Served, tmp_path: Path, policy: str) -> None:
    port = free_port()
    directory = nginx_dir(tmp_path, f"127.0.0.1:{port}", [holding_replica.base.removeprefix("http://")])
    edge = f"http://127.0.0.1:{port}"
    with running(nginx_command(directory, policy), f"{edge}/health", log=tmp_path / "nginx.log"):
        assert streamed_through(f"{edge}/mcp") == ["notifications/progress", "result"]


@pytest.mark.parametrize("policy", POLICIES)
def test_caddy_streams_events_unbuffered(holding_replica: Served, tmp_path: Path, policy: str) -> None:
    port = free_port()
    edge = f"http://127.0.0.1:{port}"
    env = caddy_env(tmp_path, edge, [holding_replica.base.removeprefix("http://")])
    with running(caddy_command(policy), f"{edge}/health", env=env, log=tmp_path / "caddy.log"):
        assert streamed_through(f"{edge}/mcp") == ["notifications/progress", "result"]
