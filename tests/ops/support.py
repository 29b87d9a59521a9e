"""An in-process HTTP app with a few tools, and the requests the operations tests send to it."""

from __future__ import annotations

from typing import Any

import anyio
import orjson
from prometheus_client.parser import text_string_to_metric_families

from mcpserve import MCPServer
from mcpserve.config import load_settings
from mcpserve.errors import ToolError
from mcpserve.runtime import build_http_app
from mcpserve.transports.http.app import HttpApp
from tests.support.asgi import META, MODERN_HEADERS, Reply, request, rpc

LEGACY_HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}


class Gate:
    """Holds the ``hold`` tool: ``entered`` is set once a call is inside it, ``release`` ends it."""

    def __init__(self) -> None:
        self.entered = anyio.Event()
        self.release = anyio.Event()


def make_server(gate: Gate | None = None) -> MCPServer:
    server = MCPServer("ops-test")

    @server.tool()
    def echo(text: str) -> str:
        """Echo the text."""
        return text

    @server.tool()
    def fail() -> str:
        """Always fails the way a tool reports failure."""
        raise ToolError("upstream said no")

    @server.tool()
    async def hold() -> str:
        """Stays in flight until the test's gate releases it."""
        if gate is None:
            raise ToolError("no gate")
        gate.entered.set()
        await gate.release.wait()
        return "released"

    return server


def make_app(server: MCPServer | None = None, **settings: Any) -> HttpApp:
    return build_http_app(server or make_server(), load_settings({"auth": "none", **settings}))


def modern_headers(method: str, name: str | None = None) -> dict[str, str]:
    headers = {**MODERN_HEADERS, "mcp-method": method}
    if name is not None:
        headers["mcp-name"] = name
    return headers


async def call_tool(app: HttpApp, name: str, arguments: dict[str, Any], **options: Any) -> Reply:
    body = rpc("tools/call", {"name": name, "arguments": arguments, "_meta": META})
    return await request(app, "POST", headers=modern_headers("tools/call", name), body=body, **options)


async def initialize(app: HttpApp) -> Reply:
    params = {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    }
    return await request(app, "POST", headers=LEGACY_HEADERS, body=rpc("initialize", params))


def session_headers(session_id: str) -> dict[str, str]:
    return {**LEGACY_HEADERS, "mcp-session-id": session_id, "mcp-protocol-version": "2025-06-18"}


async def scrape(app: HttpApp) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of /metrics as {(sample name, labels): value}."""
    reply = await request(app, "GET", path="/metrics")
    assert reply.status == 200, reply.body
    assert reply.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(reply.body.decode()):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def labels(**values: str) -> frozenset[tuple[str, str]]:
    return frozenset(values.items())


def body_of(reply: Reply) -> Any:
    return orjson.loads(reply.body)
