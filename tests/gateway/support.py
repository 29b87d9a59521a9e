"""What the gateway tests share: the third-party servers' launchers and a gateway.toml writer."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio

from mcpserve.auth.keys import hash_key
from mcpserve.gateway.config import UpstreamSpec
from mcpserve.gateway.health import upstream_state
from mcpserve.gateway.upstream import Upstream
from mcpserve.protocol.sealing import KeyRing
from mcpserve.server.app import MCPServer
from mcpserve.server.dispatch import Dispatcher
from mcpserve.store.base import NotificationBus
from tests.support.servers import ROOT

UPSTREAM_APP = ROOT / "tests" / "gateway" / "upstream_app.py"
FULL_KEY = "mcps_gateway-full-key-for-tests"
LIMITED_KEY = "mcps_gateway-limited-key-for-tests"


def app_upstream(name: str = "test", **options: Any) -> dict[str, Any]:
    return {"name": name, "command": sys.executable, "args": [str(UPSTREAM_APP)], **options}


def _toml_value(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f'"{k}" = {_toml_value(v)}' for k, v in value.items()) + "}"
    return str(value)


def write_config(path: Path, upstreams: list[dict[str, Any]], **settings: Any) -> Path:
    lines = [f"{key} = {_toml_value(value)}" for key, value in settings.items()]
    for upstream in upstreams:
        lines.append("\n[[upstreams]]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in upstream.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_keys(path: Path) -> Path:
    path.write_text(
        f"""
[[keys]]
principal = "full"
sha256 = "{hash_key(FULL_KEY)}"
scopes = ["time"]

[[keys]]
principal = "limited"
sha256 = "{hash_key(LIMITED_KEY)}"
scopes = []
"""
    )
    return path


@contextlib.asynccontextmanager
async def gateway(
    *upstreams: dict[str, Any], bus: NotificationBus | None = None, keyring: KeyRing | None = None
) -> AsyncIterator[tuple[MCPServer, Dispatcher]]:
    """An in-process gateway over real upstream processes, every upstream settled (or failed).

    Replicas of one gateway: the same ``keyring`` and a bus each on one Redis."""
    server = MCPServer("gateway-under-test", bus=bus)
    for options in upstreams:
        server.mount(options["name"], Upstream.from_spec(UpstreamSpec(**options)))
    async with server.lifespan():
        mounted = [upstream_of(server, name) for name in server.mounts]
        await eventually(lambda: all(_settled(u) for u in mounted), 30)
        yield server, Dispatcher(server, keyring=keyring)


def _settled(upstream: Upstream) -> bool:
    state = upstream_state(upstream)[0]
    return state == "failed" or (state in ("ready", "idle") and bool(upstream.catalogue.tools))


def upstream_of(server: MCPServer, name: str) -> Upstream:
    found = server.mounts[name]
    assert isinstance(found, Upstream)
    return found


async def eventually(condition: Any, seconds: float = 10.0) -> None:
    """Wait until ``condition()`` holds, polling, within ``seconds``."""
    with anyio.fail_after(seconds):
        while not condition():  # noqa: ASYNC110 - the state lives in other processes: polled
            await anyio.sleep(0.01)
