"""A server whose tools hold each call until the test releases it over a loopback socket."""

from __future__ import annotations

import socket

import anyio

from mcpserve import Context, MCPServer

app = MCPServer("drain-test")


@app.tool()
async def hold(gate: int, index: int) -> str:
    """Report in at the test's gate, then finish when the gate answers."""
    async with await anyio.connect_tcp("127.0.0.1", gate) as stream:
        await stream.send(f"{index}\n".encode())
        await stream.receive()
    return f"done {index}"


@app.tool()
def hold_sync(gate: int, index: int) -> str:
    """The same in a worker thread: a sync tool that blocks until the gate answers."""
    with socket.create_connection(("127.0.0.1", gate)) as connection:
        connection.sendall(f"{index}\n".encode())
        connection.recv(16)
    return f"done {index}"


@app.tool()
async def hold_streaming(gate: int, index: int, ctx: Context) -> str:
    """Switch the response to SSE with a progress event, then hold like ``hold``."""
    await ctx.report_progress(1, 2)
    return await hold(gate, index)


@app.tool()
def echo(text: str) -> str:
    """Answer at once."""
    return text


@app.tool()
async def pause(seconds: float) -> str:
    """Take a while, so a drain finds calls in flight."""
    await anyio.sleep(seconds)
    return "paused"
