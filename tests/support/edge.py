"""The edge configs of deploy/nginx and deploy/caddy, run on loopback for tests.

``nginx_dir`` copies deploy/nginx and substitutes its two include files (where the proxy
listens, which replicas it sends to), so the committed server block is what runs; the cluster
tests use the same helpers. Both proxies run in the foreground and stop by PID.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from tests.support.processes import ROOT, stop_process

NGINX = ROOT / "deploy" / "nginx"
CADDY = ROOT / "deploy" / "caddy"
NGINX_POLICIES = {"round-robin": "nginx.conf", "session-hash": "nginx-session-hash.conf"}
CADDY_POLICIES = {"round-robin": "Caddyfile", "session-hash": "Caddyfile.session-hash"}


def nginx_dir(directory: Path, listen: str, upstreams: Sequence[str]) -> Path:
    """deploy/nginx in ``directory`` listening on ``listen`` (host:port) for ``upstreams``."""
    shutil.copytree(NGINX, directory, dirs_exist_ok=True)
    (directory / "listen.conf").write_text(f"listen {listen};\n")
    servers = "".join(f"server {address} max_fails=1 fail_timeout=5s;\n" for address in upstreams)
    (directory / "upstreams.conf").write_text(servers)
    return directory


def nginx_command(directory: Path, policy: str = "round-robin", *, test: bool = False) -> list[str]:
    command = ["nginx", "-p", f"{directory}/", "-c", str(directory / NGINX_POLICIES[policy])]
    return [*command, "-t", "-q"] if test else command


def caddy_env(directory: Path, address: str, upstreams: Sequence[str]) -> dict[str, str]:
    """Environment for deploy/caddy: the site address, the replicas, Caddy's own folders."""
    return {
        **os.environ,
        "MCPSERVE_EDGE_ADDRESS": address,
        "MCPSERVE_UPSTREAMS": " ".join(upstreams),
        "XDG_DATA_HOME": str(directory / "data"),
        "XDG_CONFIG_HOME": str(directory / "config"),
    }


def caddy_command(policy: str = "round-robin", *, validate: bool = False) -> list[str]:
    verb = "validate" if validate else "run"
    return ["caddy", verb, "--config", str(CADDY / CADDY_POLICIES[policy]), "--adapter", "caddyfile"]


@contextlib.contextmanager
def nginx_with(directory: Path, render: Callable[[int], str]) -> Iterator[int]:
    """nginx on a test's own configuration, ``render(port)``, with ``directory`` as its prefix,
    until the block ends; yields the port once ``/health`` answers 200 through it."""
    from tests.support.servers import free_port, wait_healthy  # noqa: PLC0415 - servers imports pytest

    port = free_port()
    path = directory / "nginx.conf"
    path.write_text(render(port))
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"  # installed by scripts/deploy-tools.sh
    process = subprocess.Popen(
        [nginx, "-c", str(path), "-p", str(directory)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_healthy(f"http://127.0.0.1:{port}/health", process)
        yield port
    finally:
        stop_process(process, signal.SIGQUIT)  # nginx's graceful stop


@contextlib.contextmanager
def running(
    command: list[str], ready: str, env: dict[str, str] | None = None, log: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a proxy until the block ends; ``ready`` is a URL polled until it answers at all."""
    import httpx  # noqa: PLC0415

    output = log.open("wb") if log is not None else subprocess.DEVNULL
    process = subprocess.Popen(command, env=env, stdout=output, stderr=output)
    try:
        end = time.monotonic() + 15
        while True:
            assert process.poll() is None, f"{command[0]} exited with {process.returncode}"
            try:
                httpx.get(ready, timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < end, f"{command[0]} did not listen in time"
                time.sleep(0.05)  # polling while the proxy starts, not synchronisation
        yield process
    finally:
        stop_process(process)
        if log is not None and not isinstance(output, int):
            output.close()
