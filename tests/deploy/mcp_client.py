"""A minimal MCP client over HTTP(S) for deployment tests: one tools/call in either era.

Keyword arguments go to ``httpx.Client`` (``verify=``, ``cert=``, ``headers=``).
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.wire import initialize_request, modern_request

ACCEPT = "application/json, text/event-stream"


def _json(response: httpx.Response) -> Any:
    assert response.status_code == 200, (response.status_code, response.text[:300])
    if response.headers["content-type"].startswith("text/event-stream"):
        data = [line[5:] for line in response.text.splitlines() if line.startswith("data:")]
        return httpx.Response(200, content=data[-1]).json()
    return response.json()


def modern_call(url: str, tool: str, arguments: dict[str, Any], **client: Any) -> Any:
    """A 2026-07-28 (stateless) tools/call; returns the JSON-RPC result."""
    headers = {
        "accept": ACCEPT,
        "mcp-protocol-version": "2026-07-28",
        "mcp-method": "tools/call",
        "mcp-name": tool,
    }
    body = modern_request(1, "tools/call", {"name": tool, "arguments": arguments})
    with httpx.Client(timeout=10, **client) as http:
        reply = _json(http.post(url, json=body, headers=headers))
    assert "result" in reply, reply
    return reply["result"]


def legacy_call(url: str, tool: str, arguments: dict[str, Any], **client: Any) -> Any:
    """A 2025-era session: initialize, initialized, tools/call, DELETE; returns the call's result."""
    version = "2025-11-25"
    with httpx.Client(timeout=10, **client) as http:
        opened = http.post(url, json=initialize_request(0, version), headers={"accept": ACCEPT})
        _json(opened)
        headers = {
            "accept": ACCEPT,
            "mcp-session-id": opened.headers["mcp-session-id"],
            "mcp-protocol-version": version,
        }
        notified = http.post(
            url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers
        )
        assert notified.status_code == 202, notified.text
        call = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": tool, "arguments": arguments},
        }
        reply = _json(http.post(url, json=call, headers=headers))
        http.delete(url, headers=headers)
    assert "result" in reply, reply
    return reply["result"]
