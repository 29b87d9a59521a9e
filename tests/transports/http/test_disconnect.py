"""2026-07-28: a client closing the response stream cancels the call it was waiting for."""

from __future__ import annotations

import anyio
import pytest

from mcpserve import MCPServer
from mcpserve.config import load_settings
from mcpserve.runtime import build_http_app
from tests.support.asgi import META, MODERN_HEADERS, open_request, request, rpc

pytestmark = pytest.mark.anyio


def _call(name: str) -> tuple[dict[str, str], bytes]:
    headers = {**MODERN_HEADERS, "mcp-method": "tools/call", "mcp-name": name}
    return headers, rpc("tools/call", {"name": name, "arguments": {}, "_meta": META})


async def test_closing_the_response_cancels_a_running_call_and_the_next_call_is_served() -> None:
    started, cancelled = anyio.Event(), anyio.Event()
    server = MCPServer("disconnect")

    @server.tool()
    async def wait_forever() -> str:
        """Runs until cancelled."""
        started.set()
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.set()
        return "unreachable"

    @server.tool()
    async def quick() -> str:
        """Answers at once."""
        return "ok"

    app = build_http_app(server, load_settings({"auth": "none"}))
    headers, body = _call("wait_forever")
    with anyio.fail_after(5):
        async with open_request(app, "POST", headers=headers, body=body) as reply:
            await started.wait()
        # Leaving the block disconnected the client; the watcher starts within a tick.
        await cancelled.wait()
    # Nothing was answered: the request just ends (an empty 202 to a client already gone).
    assert (reply.status, reply.body) == (202, b"")
    headers, body = _call("quick")
    answer = await request(app, "POST", headers=headers, body=body)
    assert answer.status == 200
    assert answer.json()["result"]["structuredContent"] == {"result": "ok"}
