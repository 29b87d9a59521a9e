"""``mcpserve gateway --list``: start every upstream, list the merged catalogue, stop."""

from __future__ import annotations

import itertools
from typing import Any

import anyio

from mcpserve.config import Settings
from mcpserve.gateway.health import upstream_state
from mcpserve.gateway.upstream import Upstream
from mcpserve.runtime import mount_upstreams
from mcpserve.server.app import MCPServer

__all__ = ["list_catalogue"]

_SETTLED = ("ready", "idle", "failed")


def list_catalogue(server: MCPServer, settings: Settings) -> dict[str, Any]:
    """Every upstream's state and what the server serves once they have settled."""
    mount_upstreams(server, settings)
    upstreams = [u for u in server.mounts.values() if isinstance(u, Upstream)]
    limit = max((u.spec.start_timeout for u in upstreams if u.spec is not None), default=30.0)

    async def main() -> dict[str, Any]:
        async with server.lifespan():
            with anyio.move_on_after(limit):
                for _ in itertools.count():  # poll their state, within the deadline
                    if all(_settled(u) for u in upstreams):
                        break
                    await anyio.sleep(0.05)
            return {
                "upstreams": {u.name: _describe(u) for u in upstreams},
                "tools": server.definitions("tools", None),
                "resources": server.definitions("resources", None),
                "resourceTemplates": server.definitions("resourceTemplates", None),
                "prompts": server.definitions("prompts", None),
            }

    return anyio.run(main)


def _settled(upstream: Upstream) -> bool:
    state, _ = upstream_state(upstream)
    return state in _SETTLED and (
        state == "failed"
        or bool(upstream.catalogue.tools or upstream.catalogue.prompts or upstream.catalogue.resources)
    )


def _describe(upstream: Upstream) -> dict[str, Any]:
    state, reason = upstream_state(upstream)
    described: dict[str, Any] = {"state": state, "tools": len(upstream.catalogue.tools)}
    if reason:
        described["reason"] = reason
    return described
