"""Servers for ``mcpserve check``: ready, with a failing dependency, and failing at startup."""

from __future__ import annotations

from mcpserve import MCPServer

ready = MCPServer("check-ready")
broken = MCPServer("check-broken")
failing_startup = MCPServer("check-failing-startup")


async def _fine() -> None:
    return None


async def _refused() -> None:
    raise ConnectionRefusedError("connect to postgresql://app:hunter2-check@db.internal:5432/app refused")


@failing_startup.on_startup
async def _open_pool() -> None:
    raise RuntimeError("pool could not open")


ready.add_readiness_check("cache", _fine)
broken.add_readiness_check("cache", _fine)
broken.add_readiness_check("database", _refused)
