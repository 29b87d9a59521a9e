"""Real clients with bearer tokens against a real server process: each sees only its tools.

The server verifies JWTs against the test's local issuer (JWKS over loopback HTTP) and API keys
from a keys file.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from tests.auth.app import DEPLOYER_KEY, READER_KEY, write_keys
from tests.support.issuer import LocalIssuer, local_issuer
from tests.support.servers import ROOT, free_port, node_tool, require_tool, running_server

pytestmark = pytest.mark.slow

APP = "tests/auth/scoped_app.py"
JS = ROOT / "tests" / "interop" / "js"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, LocalIssuer]]:
    keys = write_keys(tmp_path_factory.mktemp("keys"))
    with local_issuer() as issuer:
        port = free_port()
        env = {
            "MCPSERVE_API_KEYS_FILE": str(keys),
            "MCPSERVE_OAUTH_ISSUER": issuer.url,
            "MCPSERVE_OAUTH_JWKS_URL": issuer.jwks_url,
            "MCPSERVE_REQUIRED_SCOPES": "mcp",
            # The resource URL (and so the tokens' audience) names the port the server will bind.
            "MCPSERVE_RESOURCE_URL": f"http://127.0.0.1:{port}/mcp",
        }
        with running_server(APP, env=env, auth=None, port=port) as url:
            yield url, issuer


async def _python_client(url: str, token: str, mode: str) -> dict[str, Any]:
    async with (
        create_mcp_http_client(headers={"Authorization": f"Bearer {token}"}) as http,
        Client(streamable_http_client(url, http_client=http), mode=mode) as client,
    ):
        tools = await client.list_tools()
        who = await client.call_tool("whoami", {})
        return {"version": client.protocol_version, "tools": [t.name for t in tools.tools], "who": who}


@pytest.mark.parametrize(("mode", "version"), [("2026-07-28", "2026-07-28"), ("legacy", "2025-11-25")])
def test_official_python_client_with_a_jwt(served: tuple[str, LocalIssuer], mode: str, version: str) -> None:
    url, issuer = served
    token = issuer.mint(sub="alice", scope="mcp", aud=url)
    seen = anyio.run(_python_client, url, token, mode)
    assert seen["version"] == version
    assert seen["tools"] == ["whoami"]
    assert seen["who"].content[0].text == "alice"
    broader = anyio.run(_python_client, url, issuer.mint(sub="bob", scope="mcp deploy:write", aud=url), mode)
    assert broader["tools"] == ["whoami", "deploy"]


@pytest.mark.parametrize(
    ("mode", "key", "tools"),
    [
        ("pin", READER_KEY, ["whoami"]),
        ("legacy", READER_KEY, ["whoami"]),
        ("pin", DEPLOYER_KEY, ["whoami", "deploy"]),
    ],
)
def test_typescript_v2_client_with_an_api_key(
    served: tuple[str, LocalIssuer], mode: str, key: str, tools: list[str]
) -> None:
    node = require_tool(node_tool("node"))
    url, _ = served
    done = subprocess.run(
        [str(node), str(JS / "client_v2.mjs"), url, mode, "whoami", "{}"],
        capture_output=True,
        timeout=90,
        check=False,
        env={**os.environ, "MCP_TOKEN": key},
    )
    assert done.returncode == 0, done.stdout.decode()[-2000:] + done.stderr.decode()[-2000:]
    result = json.loads(done.stdout)
    assert result["tools"] == tools
    assert result["call"]["result"]["content"][0]["text"] == ("reader" if key == READER_KEY else "deployer")
