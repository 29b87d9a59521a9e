"""The benchmark's echo tool served by mcpserve.

.venv/bin/mcpserve serve bench/apps/echo.py --transport http --host 127.0.0.1 --port 8000
"""

from mcpserve import MCPServer

app = MCPServer("echo")


@app.tool()
def echo(text: str) -> str:
    """Echo the text back."""
    return text
