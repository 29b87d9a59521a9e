"""A small app for the client interop tests: one tool for everyone, one behind a scope."""

from __future__ import annotations

from mcpserve import Context, MCPServer

server = MCPServer("scoped-app")


@server.tool()
def whoami(ctx: Context) -> str:
    """Who is calling."""
    return ctx.principal.name if ctx.principal else "nobody"


@server.tool(scopes=["deploy:write"])
def deploy(service: str) -> str:
    """Deploy a service."""
    return f"deployed {service}"
