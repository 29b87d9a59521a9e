"""The server every replica of the cluster test runs."""

from __future__ import annotations

import anyio

from mcpserve import Context, MCPServer

app = MCPServer("cluster-test")


@app.tool()
def echo(text: str) -> str:
    """Answer at once."""
    return text


@app.tool()
async def pause(seconds: float) -> str:
    """Take a while, so a drain or a kill finds calls in flight."""
    await anyio.sleep(seconds)
    return "paused"


@app.tool()
async def confirm(action: str, ctx: Context) -> str:
    """Ask the client before acting (elicitation); the answer may land on any replica."""
    answer = await ctx.elicit("Really?", {"type": "object", "properties": {"ok": {"type": "boolean"}}})
    return f"{action}: {answer.action}"


@app.tool()
async def announce() -> str:
    """Publish a tool-list change from this replica."""
    await app.notify_tools_changed()
    return "announced"
