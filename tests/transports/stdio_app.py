"""A tiny app for stdio transport tests: ``mcpserve serve tests/transports/stdio_app.py``.

``hang`` reports progress once (so a test knows it is running) and then waits for something that
never happens; only cancellation or the tool timeout ends it.
"""

from __future__ import annotations

import anyio
from pydantic import BaseModel

from mcpserve import Context, MCPServer

app = MCPServer("stdio-test", instructions="Transport test fixture.")


class Answer(BaseModel):
    ok: bool


@app.tool()
async def hang(ctx: Context) -> str:
    """Report progress once, then wait forever."""
    await ctx.report_progress(1)
    await anyio.Event().wait()
    return "unreachable"


@app.tool()
async def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


@app.tool()
def crash() -> str:
    """Fail with an unexpected exception."""
    raise RuntimeError("secret detail that must stay in the server log")


@app.tool()
async def confirm(ctx: Context) -> str:
    """Ask the user a yes/no question."""
    answer = await ctx.elicit("OK?", Answer)
    return f"{answer.action}:{answer.data.ok if answer.data else None}"


@app.tool()
async def shout(ctx: Context) -> str:
    """Send one log message per level from info up."""
    await ctx.info("info line")
    await ctx.error("error line")
    return "shouted"


@app.tool()
async def touch(ctx: Context) -> str:
    """Announce a tool list change and an update of config://x."""
    await ctx.notify_tools_changed()
    await ctx.notify_resource_updated("config://x")
    await ctx.notify_resource_updated("config://y")
    return "touched"


@app.resource("config://x")
def config_x() -> str:
    return "x"
