"""A stdio upstream for gateway tests: in-memory state, its pid, a slow call, a question, progress.

Run as ``python tests/gateway/upstream_app.py`` (stdio, 2025 era as the gateway speaks it).
"""

from __future__ import annotations

import os

import anyio

from mcpserve import Context, MCPServer

app = MCPServer("gateway-test-upstream")
_notes: list[str] = []


@app.tool()
def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


@app.tool()
def pid() -> int:
    """This process's id."""
    return os.getpid()


@app.tool()
def remember(note: str) -> list[str]:
    """Keep a note in this process's memory; returns every note kept so far."""
    _notes.append(note)
    return list(_notes)


@app.tool()
async def slow(seconds: float) -> str:
    """Sleep, then answer."""
    await anyio.sleep(seconds)
    return "done"


@app.tool()
async def progress(ctx: Context, steps: int = 3) -> str:
    """Report progress ``steps`` times."""
    for step in range(1, steps + 1):
        await ctx.report_progress(step, steps)
    return "progressed"


@app.tool()
async def confirm(ctx: Context, question: str) -> str:
    """Ask the user a yes/no question through elicitation."""
    answer = await ctx.elicit(question, {"type": "object", "properties": {"ok": {"type": "boolean"}}})
    return f"{answer.action}:{(answer.content or {}).get('ok')}"


@app.tool()
async def confirm_then_work(ctx: Context, question: str, seconds: float = 0.0) -> str:
    """Ask a question, then report progress twice and work ``seconds`` before answering."""
    answer = await ctx.elicit(question, {"type": "object", "properties": {"ok": {"type": "boolean"}}})
    await ctx.report_progress(1, 2)
    await anyio.sleep(seconds)
    await ctx.report_progress(2, 2)
    return f"worked:{answer.action}"


@app.tool()
def environment(name: str) -> str:
    """One environment variable of this process ('' when unset)."""
    return os.environ.get(name, "")


@app.tool()
def meta(ctx: Context) -> dict[str, object]:
    """The _meta object this call arrived with."""
    return dict(ctx.meta or {})


@app.tool()
async def grow(ctx: Context, name: str) -> str:
    """Add a tool named ``name`` and announce that the tool list changed."""
    app.add_tool(lambda: name, name=name)
    await ctx.notify_tools_changed()
    return name


@app.tool()
async def touch(ctx: Context) -> str:
    """Announce that notes://all changed (sent to sessions subscribed to it)."""
    await ctx.notify_resource_updated("notes://all")
    return "touched"


@app.resource("notes://all", mime_type="text/plain")
def all_notes() -> str:
    return "\n".join(_notes)


@app.prompt()
def greet(who: str) -> str:
    """A greeting."""
    return f"Hello, {who}!"


if __name__ == "__main__":
    app.run("stdio")
