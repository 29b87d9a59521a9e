"""A real mcpserve process (the demo app) with keys, Redis-backed rate limits and a separate
metrics listener, and a short run of traffic that touches every series the dashboard and the
alert rules use."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.admin.support import ADMIN, USER, write_keys
from tests.support.servers import free_port, running_server

PROTOCOL = "2026-07-28"
META = {"io.modelcontextprotocol/protocolVersion": PROTOCOL, "io.modelcontextprotocol/clientCapabilities": {}}
PER_MINUTE = 5


@dataclass
class Live:
    mcp_url: str
    ops_url: str  # the MCPSERVE_METRICS_PORT listener: /metrics and /admin
    keys: dict[str, str]


@contextlib.contextmanager
def live_server(directory: Path, per_minute: int = PER_MINUTE) -> Iterator[Live]:
    keys = write_keys(directory)
    metrics_port = free_port()
    env = {
        "MCPSERVE_API_KEYS_FILE": str(directory / "keys.toml"),
        "MCPSERVE_METRICS_PORT": str(metrics_port),
        "MCPSERVE_REDIS_URL": "redis://127.0.0.1:6379/0",
        "MCPSERVE_STATE": "memory",  # Redis backs the rate limits only: sessions stay in the process
        "MCPSERVE_REDIS_PREFIX": f"mcpserve:test:obs:{uuid.uuid4().hex}:",
        "MCPSERVE_RATE_LIMIT_PER_MINUTE": str(per_minute),
    }
    with running_server(env=env, auth=None) as mcp_url:
        yield Live(mcp_url, f"http://127.0.0.1:{metrics_port}", keys)


def _modern(
    client: httpx.Client, url: str, key: str | None, method: str, params: dict[str, Any]
) -> httpx.Response:
    headers = {
        "content-type": "application/json",
        "accept": "application/json, text/event-stream",
        "mcp-protocol-version": PROTOCOL,
        "mcp-method": method,
    }
    if "name" in params:
        headers["mcp-name"] = params["name"]
    if key is not None:
        headers["authorization"] = f"Bearer {key}"
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": {**params, "_meta": META}}
    return client.post(url, headers=headers, json=body)


def drive_traffic(live: Live) -> dict[str, int]:
    """Successes, a tool error, rate-limit refusals, an authentication failure, and a 2025-era
    session opened and closed. Returns how many of each it caused."""
    counts = {"success": 0, "tool_error": 0, "rate_limited": 0, "unauthenticated": 0}
    admin, user = live.keys[ADMIN], live.keys[USER]
    with httpx.Client(timeout=10) as client:
        for query in ("rollback", "deploy", "incident"):
            reply = _modern(
                client,
                live.mcp_url,
                admin,
                "tools/call",
                {"name": "search_docs", "arguments": {"query": query}},
            )
            assert reply.status_code == 200 and not reply.json()["result"]["isError"], reply.text
            counts["success"] += 1
        reply = _modern(client, live.mcp_url, admin, "tools/call", {"name": "no_such_tool", "arguments": {}})
        assert reply.json()["result"]["isError"]
        counts["tool_error"] += 1
        for _ in range(PER_MINUTE + 3):
            reply = _modern(
                client, live.mcp_url, user, "tools/call", {"name": "search_docs", "arguments": {"query": "x"}}
            )
            counts["success" if reply.status_code == 200 else "rate_limited"] += 1
        assert counts["rate_limited"] >= 3
        assert _modern(client, live.mcp_url, None, "tools/list", {}).status_code == 401
        counts["unauthenticated"] += 1
        legacy = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
        legacy["authorization"] = f"Bearer {admin}"
        init = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "obs", "version": "1"},
            },
        }
        opened = client.post(live.mcp_url, headers=legacy, json=init)
        assert opened.status_code == 200, opened.text
        session = {
            **legacy,
            "mcp-session-id": opened.headers["mcp-session-id"],
            "mcp-protocol-version": "2025-06-18",
        }
        notified = client.post(
            live.mcp_url, headers=session, json={"jsonrpc": "2.0", "method": "notifications/initialized"}
        )
        assert notified.status_code == 202
        assert client.delete(live.mcp_url, headers=session).status_code in (200, 204)
    return counts


def scrape(live: Live) -> str:
    reply = httpx.get(live.ops_url + "/metrics", timeout=10)
    reply.raise_for_status()
    return reply.text
