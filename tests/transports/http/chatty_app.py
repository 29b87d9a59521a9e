"""A server whose tool streams progress, so every 2025-era call leaves resumable events."""

from __future__ import annotations

from mcpserve import Context, MCPServer

app = MCPServer("chatty")


@app.tool()
async def chatter(count: int, size: int, ctx: Context) -> str:
    """Report ``count`` progress steps, each with a message of ``size`` characters."""
    for step in range(1, count + 1):
        await ctx.report_progress(step, count, "x" * size)
    return "done"
