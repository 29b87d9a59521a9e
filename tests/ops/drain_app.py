"""A server whose tool holds each call until the test releases it over a loopback socket."""

from __future__ import annotations

import anyio

from mcpserve import MCPServer

app = MCPServer("drain-test")


@app.tool()
async def hold(gate: int, index: int) -> str:
    """Report in at the test's gate, then finish when the gate answers."""
    async with await anyio.connect_tcp("127.0.0.1", gate) as stream:
        await stream.send(f"{index}\n".encode())
        await stream.receive()
    return f"done {index}"
