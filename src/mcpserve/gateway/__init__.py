"""The gateway: serve other MCP servers (stdio programs, remote HTTP servers) through mcpserve.

``app.mount("name", Upstream.stdio("npx", [...]))`` adds an upstream beside the app's own tools;
``mcpserve gateway --config gateway.toml`` serves ``[[upstreams]]`` tables. See docs/gateway.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mcpserve.gateway.upstream import Upstream

__all__ = ["Upstream"]


def __getattr__(name: str) -> Any:
    # Lazy: mcpserve.config imports gateway.config, and the upstream machinery imports config.
    if name == "Upstream":
        from mcpserve.gateway.upstream import Upstream  # noqa: PLC0415

        return Upstream
    raise AttributeError(name)
