"""A two-tool app for the rate-limit integration tests: a cheap tool and an expensive one."""

from mcpserve import MCPServer

app = MCPServer("limits-fixture")


@app.tool()
def echo(text: str) -> str:
    """Echo the text."""
    return text


@app.tool()
def costly(n: int) -> int:
    """Stands in for an expensive backend call."""
    return n * 2
