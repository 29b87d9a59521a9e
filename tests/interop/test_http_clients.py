"""Real MCP clients against the demo over Streamable HTTP, in every era each client speaks."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.types import ElicitResult

from tests.support.servers import ROOT, node_launcher, running_server

pytestmark = pytest.mark.slow

DEMO_TOOLS = ["query_database", "get_deployment_status", "search_docs", "read_doc", "plan_rollback"]
JS = ROOT / "tests" / "interop" / "js"


@pytest.fixture(scope="module")
def demo_url() -> Iterator[str]:
    # Not about throttling: every client's calls must not meet the default rate limits.
    with running_server(
        env={"MCPSERVE_RATE_LIMIT_PER_MINUTE": "0", "MCPSERVE_RATE_LIMIT_PER_HOUR": "0"}
    ) as url:
        yield url


def _run_json(*command: str) -> dict[str, Any]:
    done = subprocess.run(command, capture_output=True, timeout=90, check=False)
    assert done.returncode == 0, done.stdout.decode()[-2000:] + done.stderr.decode()[-2000:]
    return dict(json.loads(done.stdout))


async def _python_session(url: str, mode: str) -> dict[str, Any]:
    async def accept(context: Any, params: Any) -> ElicitResult:
        return ElicitResult(action="accept", content={"confirm": True, "reason": "error rate"})

    async with (
        create_mcp_http_client() as http,
        Client(
            streamable_http_client(url, http_client=http), mode=mode, elicitation_callback=accept
        ) as client,
    ):
        tools = await client.list_tools()
        good = await client.call_tool("query_database", {"sql": "SELECT count(*) AS n FROM services"})
        bad = await client.call_tool("query_database", {"sql": "DROP TABLE services"})
        plan = await client.call_tool("plan_rollback", {"service": "payments"})
        resources = await client.list_resources()
        read = await client.read_resource(resources.resources[0].uri)
        prompt = await client.get_prompt("summarize_incident", {"incident_id": "124"})
        return {
            "version": client.protocol_version,
            "tools": [t.name for t in tools.tools],
            "good": good,
            "bad": bad,
            "plan": plan,
            "read": read,
            "prompt": prompt,
        }


@pytest.mark.parametrize(
    ("mode", "version"), [("auto", "2026-07-28"), ("2026-07-28", "2026-07-28"), ("legacy", "2025-11-25")]
)
def test_python_client_over_http(demo_url: str, mode: str, version: str) -> None:
    seen = anyio.run(_python_session, demo_url, mode)
    assert seen["version"] == version
    assert seen["tools"] == DEMO_TOOLS
    assert seen["good"].is_error is False
    assert seen["good"].structured_content["rows"] == [[10]]
    assert seen["bad"].is_error is True
    assert "refused" in seen["bad"].content[0].text
    assert seen["plan"].structured_content["status"] == "planned"
    assert seen["read"].contents[0].text.startswith("# ")
    assert "Incident record" in seen["prompt"].messages[0].content.text


@pytest.mark.parametrize(
    ("mode", "version"), [("auto", "2026-07-28"), ("pin", "2026-07-28"), ("legacy", "2025-11-25")]
)
def test_typescript_v2_client(demo_url: str, mode: str, version: str) -> None:
    node = node_launcher("node")
    result = _run_json(node, str(JS / "client_v2.mjs"), demo_url, mode, "search_docs", '{"query": "redis"}')
    assert result["protocolVersion"] == version
    assert result["tools"] == DEMO_TOOLS
    assert result["call"]["result"]["isError"] is False
    assert "redis" in json.dumps(result["call"]["result"]["structuredContent"]).lower()


def test_typescript_v1_client_uses_get_stream_and_delete(demo_url: str) -> None:
    node = node_launcher("node")
    result = _run_json(
        node, str(JS / "client_v1.mjs"), demo_url, "read_doc", '{"path": "deploy-rollback.md"}'
    )
    assert result["protocolVersion"] == "2025-11-25"
    assert result["sessionId"]
    assert result["call"]["result"]["isError"] is False
    assert result["getStream"] == {"requested": True, "status": 200, "contentType": "text/event-stream"}
    assert result["terminate"]["status"] == 200
    assert result["afterTerminate"]["status"] == 404
    assert result["transportErrors"] == []


@pytest.mark.parametrize("era", ["modern", "legacy"])
def test_inspector_cli(demo_url: str, era: str) -> None:
    inspector = node_launcher("mcp-inspector")
    base = [inspector, "--cli", demo_url, "--protocol-era", era, "--format", "json", "-q"]
    listed = _run_json(*base, "--method", "tools/list")
    assert [t["name"] for t in listed["result"]["tools"]] == DEMO_TOOLS
    called = _run_json(
        *base,
        "--method",
        "tools/call",
        "--tool-name",
        "get_deployment_status",
        "--tool-arg",
        "service=payments",
    )
    assert called["result"]["isError"] is False
    assert called["result"]["structuredContent"]["service"]["name"] == "payments"
