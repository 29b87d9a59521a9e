"""The benchmark's echo tool served by mcpserve.

.venv/bin/mcpserve serve bench/apps/echo.py --transport http --host 127.0.0.1 --port 8000
"""

import os

from mcpserve import MCPServer

app = MCPServer("echo")


def echo_sync(text: str) -> str:
    """Echo the text back."""
    return text


async def echo_async(text: str) -> str:
    """Echo the text back."""
    return text


# BENCH_ECHO=async (bench --tool async) serves the same tool as a coroutine: no worker thread.
app.add_tool(echo_async if os.environ.get("BENCH_ECHO", "sync") == "async" else echo_sync, name="echo")
