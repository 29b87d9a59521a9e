"""Third-party MCP servers from npm and PyPI plus a remote HTTP server, through one gateway
endpoint with API keys and scopes, driven by every client of the interop suite."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from tests.gateway.support import FULL_KEY, LIMITED_KEY, write_config, write_keys
from tests.support.logcheck import secret
from tests.support.servers import ROOT, running_server
from tests.support.servers import node_launcher as tool

pytestmark = pytest.mark.slow

JS = ROOT / "tests" / "interop" / "js"
NO_LIMITS = {"MCPSERVE_RATE_LIMIT_PER_MINUTE": "0", "MCPSERVE_RATE_LIMIT_PER_HOUR": "0"}
UPSTREAM_KEY = "mcps_demo-upstream-key-only-the-gateway-holds"


@pytest.fixture(scope="module")
def gateway_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("gateway")
    upstreams = [
        {"name": "everything", "command": tool("mcp-server-everything"), "args": ["stdio"]},
        {"name": "time", "command": tool("mcp-server-time"), "args": ["--local-timezone", "UTC"]},
    ]
    # The HTTP upstream accepts only its own key, which the gateway sends from its configuration:
    # had a client's token been passed on, the upstream would refuse every call.
    with running_server(env={**NO_LIMITS, "MCPSERVE_API_KEYS": secret(UPSTREAM_KEY)}, auth=None) as demo_url:
        headers = {"Authorization": {"env": "MCPSERVE_TEST_UPSTREAM_KEY", "prefix": "Bearer "}}
        demo = {"name": "demo", "url": demo_url, "headers": headers}
        config = write_config(directory / "gateway.toml", [*upstreams, demo])
        env = {
            **NO_LIMITS,
            "MCPSERVE_API_KEYS_FILE": str(write_keys(directory / "keys.toml")),
            "MCPSERVE_TOOL_SCOPES": json.dumps({"time__*": ["time"]}),
            "MCPSERVE_TOOL_RATE_LIMITS": json.dumps({"everything__get-tiny-image": {"per_minute": 1}}),
            "MCPSERVE_TOOL_TIMEOUTS": json.dumps({"everything__trigger-long-running-operation": 0.5}),
            "MCPSERVE_TEST_UPSTREAM_KEY": UPSTREAM_KEY,
        }
        with running_server("--config", str(config), env=env, auth=None, command_name="gateway") as url:
            yield url


async def _python_session(url: str, key: str, mode: str) -> dict[str, Any]:
    async with (
        create_mcp_http_client(headers={"Authorization": f"Bearer {key}"}) as http,
        Client(streamable_http_client(url, http_client=http), mode=mode) as client,
    ):
        tools = [t.name for t in (await client.list_tools()).tools]
        seen: dict[str, Any] = {"version": client.protocol_version, "tools": tools}
        seen["echo"] = await client.call_tool("everything__echo", {"message": "through the gateway"})
        seen["time"] = await client.call_tool("time__get_current_time", {"timezone": "UTC"})
        seen["demo"] = await client.call_tool("demo__get_deployment_status", {"service": "payments"})
        return seen


def _wait_listed(url: str) -> None:
    # The upstreams start in the background: ready means every one was listed.
    anyio.run(_poll_ready, url.replace("/mcp", "/ready"))


async def _poll_ready(url: str) -> None:
    import httpx  # noqa: PLC0415

    async with httpx.AsyncClient() as client:
        with anyio.fail_after(30):
            while True:
                body = (await client.get(url)).json()
                if body["status"] == "ready" and not body.get("degraded"):
                    return
                await anyio.sleep(0.1)


@pytest.mark.parametrize(("mode", "version"), [("2026-07-28", "2026-07-28"), ("legacy", "2025-11-25")])
def test_python_client_both_eras(gateway_url: str, mode: str, version: str) -> None:
    _wait_listed(gateway_url)
    seen = anyio.run(_python_session, gateway_url, FULL_KEY, mode)
    assert seen["version"] == version
    assert {"everything__echo", "time__get_current_time", "demo__query_database"} <= set(seen["tools"])
    assert all("__" in name for name in seen["tools"])
    assert seen["echo"].is_error is False
    assert "through the gateway" in seen["echo"].content[0].text
    assert seen["time"].is_error is False
    assert json.loads(seen["time"].content[0].text)["timezone"] == "UTC"
    assert seen["demo"].is_error is False
    assert seen["demo"].structured_content["service"]["name"] == "payments"


async def _limited(url: str, mode: str) -> tuple[list[str], Any]:
    async with (
        create_mcp_http_client(headers={"Authorization": f"Bearer {LIMITED_KEY}"}) as http,
        Client(streamable_http_client(url, http_client=http), mode=mode) as client,
    ):
        tools = [t.name for t in (await client.list_tools()).tools]
        try:
            await client.call_tool("time__get_current_time", {"timezone": "UTC"})
        except Exception as exc:  # the endpoint refuses it (HTTP 403, insufficient_scope)
            return tools, exc
        return tools, None


@pytest.mark.parametrize("mode", ["2026-07-28", "legacy"])
def test_a_scope_hides_an_upstream(gateway_url: str, mode: str) -> None:
    _wait_listed(gateway_url)
    tools, refused = anyio.run(_limited, gateway_url, mode)
    assert "everything__echo" in tools
    assert not [name for name in tools if name.startswith("time__")]
    assert refused is not None
    assert "scope" in str(refused).lower() or "403" in str(refused)


def _run_json(*command: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    done = subprocess.run(
        command, capture_output=True, timeout=90, check=False, env={**os.environ, **(env or {})}
    )
    assert done.returncode == 0, done.stdout.decode()[-2000:] + done.stderr.decode()[-2000:]
    return dict(json.loads(done.stdout))


@pytest.mark.parametrize(("mode", "version"), [("pin", "2026-07-28"), ("legacy", "2025-11-25")])
def test_typescript_client(gateway_url: str, mode: str, version: str) -> None:
    _wait_listed(gateway_url)
    node = tool("node")
    script = str(JS / "client_v2.mjs")
    call = [
        "time__convert_time",
        '{"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"}',
    ]
    result = _run_json(node, script, gateway_url, mode, *call, env={"MCP_TOKEN": FULL_KEY})
    assert result["protocolVersion"] == version
    assert "everything__echo" in result["tools"]
    assert result["call"]["result"]["isError"] is False
    assert "Asia/Tokyo" in result["call"]["result"]["content"][0]["text"]
    limited = _run_json(node, script, gateway_url, mode, env={"MCP_TOKEN": LIMITED_KEY})
    assert not [name for name in limited["tools"] if name.startswith("time__")]


@pytest.mark.parametrize("era", ["modern", "legacy"])
def test_inspector_cli(gateway_url: str, era: str) -> None:
    _wait_listed(gateway_url)
    base = [tool("mcp-inspector"), "--cli", gateway_url, "--protocol-era", era, "--format", "json", "-q"]
    base += ["--header", f"Authorization: Bearer {FULL_KEY}"]
    listed = _run_json(*base, "--method", "tools/list")
    names = [t["name"] for t in listed["result"]["tools"]]
    assert {"everything__get-sum", "time__get_current_time", "demo__read_doc"} <= set(names)
    called = _run_json(
        *base, "--method", "tools/call", "--tool-name", "everything__get-sum", "--tool-arg", "a=2", "b=3"
    )
    assert called["result"]["isError"] is False
    assert "5" in called["result"]["content"][0]["text"]


def test_the_catalogue_is_listed_by_the_cli(tmp_path: Path) -> None:
    from tests.support.processes import child_env, mcpserve_argv  # noqa: PLC0415

    config = write_config(
        tmp_path / "gateway.toml",
        [{"name": "time", "command": tool("mcp-server-time"), "args": ["--local-timezone", "UTC"]}],
    )
    done = subprocess.run(
        mcpserve_argv("gateway", "--config", str(config), "--list"),
        check=False,
        capture_output=True,
        timeout=60,
        env=child_env(),
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    listed = json.loads(done.stdout)
    assert listed["upstreams"] == {"time": {"state": "ready", "tools": 2}}
    assert [t["name"] for t in listed["tools"]] == ["time__get_current_time", "time__convert_time"]


def test_a_crash_loop_shows_in_ready_while_the_rest_is_served(tmp_path: Path) -> None:
    import sys  # noqa: PLC0415

    from tests.gateway.support import app_upstream  # noqa: PLC0415

    broken: dict[str, Any] = {
        "name": "broken",
        "command": sys.executable,
        "args": ["-c", "raise SystemExit(3)"],
    }
    broken |= {"restart_backoff": 0.01, "crash_loop_limit": 3}
    config = write_config(tmp_path / "gateway.toml", [broken, app_upstream("test")])
    with running_server("--config", str(config), env=NO_LIMITS, command_name="gateway") as url:
        body = anyio.run(_poll_until_failed, url.replace("/mcp", "/ready"))
        assert body["status"] == "ready"
        assert body["degraded"] is True
        assert "crash loop: 3 failures" in body["checks"]["upstream:broken"]
        assert body["checks"]["upstream:test"] == "ok"
        echoed = anyio.run(_echo, url)
        assert echoed == "still serving"


async def _poll_until_failed(url: str) -> dict[str, Any]:
    import httpx  # noqa: PLC0415

    async with httpx.AsyncClient() as client:
        with anyio.fail_after(30):
            while True:
                body: dict[str, Any] = (await client.get(url)).json()
                checks = body.get("checks", {})
                if "crash loop" in checks.get("upstream:broken", "") and checks.get("upstream:test") == "ok":
                    return body
                await anyio.sleep(0.1)


async def _echo(url: str) -> str:
    async with (
        create_mcp_http_client() as http,
        Client(streamable_http_client(url, http_client=http), mode="2026-07-28") as client,
    ):
        result = await client.call_tool("test__echo", {"text": "still serving"})
        return str(result.structured_content["result"]) if result.structured_content else ""


async def _limited_calls(url: str) -> tuple[Any, Any, Any]:
    async with (
        create_mcp_http_client(headers={"Authorization": f"Bearer {FULL_KEY}"}) as http,
        Client(streamable_http_client(url, http_client=http), mode="2026-07-28") as client,
    ):
        first = await client.call_tool("everything__get-tiny-image", {})
        try:
            second: Any = await client.call_tool("everything__get-tiny-image", {})
        except Exception as exc:  # refused before it reaches the upstream (HTTP 429)
            second = exc
        slow = await client.call_tool(
            "everything__trigger-long-running-operation", {"duration": 5, "steps": 5}
        )
        return first, second, slow


def test_per_tool_rate_limits_and_timeouts_apply_to_gateway_tools(gateway_url: str) -> None:
    _wait_listed(gateway_url)
    first, second, slow = anyio.run(_limited_calls, gateway_url)
    assert first.is_error is False
    assert isinstance(second, Exception) and "rate" in str(second).lower()
    assert slow.is_error is True
    assert "0.5" in slow.content[0].text


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"  # exited, waiting for its parent (or init) to reap it


async def _pid_of_child(url: str) -> int:
    async with (
        create_mcp_http_client() as http,
        Client(streamable_http_client(url, http_client=http), mode="2026-07-28") as client,
    ):
        result = await client.call_tool("test__pid", {})
        return int(result.structured_content["result"]) if result.structured_content else 0


async def _until(condition: Any, seconds: float) -> None:
    with anyio.fail_after(seconds):
        while not condition():  # noqa: ASYNC110 - another process's state: polled
            await anyio.sleep(0.05)


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_no_child_outlives_the_gateway(tmp_path: Path, how: str) -> None:
    import signal  # noqa: PLC0415

    from tests.gateway.support import app_upstream  # noqa: PLC0415

    config = write_config(tmp_path / "gateway.toml", [app_upstream("test")])
    with running_server("--config", str(config), env=NO_LIMITS, command_name="gateway") as url:
        _wait_listed(url)
        child = anyio.run(_pid_of_child, url)
        assert child > 0 and not _gone(child)
        gateway_pid = int(Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[1])
        if how == "SIGKILL":
            # No chance to stop anything: the child sees its stdin close and exits.
            os.kill(gateway_pid, signal.SIGKILL)
            anyio.run(_until, lambda: _gone(child), 10)
    anyio.run(_until, lambda: _gone(child), 10)
