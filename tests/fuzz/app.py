"""The server every fuzz drives: async tools (one failing), a header-mapped argument, resources
and a prompt. In process for the tests; ``mcpserve serve tests/fuzz/app.py:make_server`` for
``python -m bench.fuzz`` and ``python -m bench.soak``."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from mcpserve import MCPServer

__all__ = ["make_server"]


class Weather(BaseModel):
    city: str
    celsius: float


def make_server() -> MCPServer:
    server = MCPServer("fuzz")

    # Async tools: a sync one would cost a worker-thread hop per example and slow the fuzz down.
    @server.tool()
    async def echo(text: str) -> str:
        return text

    @server.tool()
    async def forecast(region: Annotated[str, Field(json_schema_extra={"x-mcp-header": "Region"})]) -> str:
        return f"sunny in {region}"

    @server.tool()
    async def weather(city: str) -> Weather:
        return Weather(city=city, celsius=20.5)

    @server.tool()
    async def fails() -> str:
        raise RuntimeError("never shown")

    @server.resource("test://readme")
    def readme() -> str:
        return "read me"

    @server.resource("test://items/{item_id}")
    def item(item_id: str) -> str:
        return f"item {item_id}"

    @server.prompt()
    def review(code: str) -> str:
        return f"Review {code}"

    return server
