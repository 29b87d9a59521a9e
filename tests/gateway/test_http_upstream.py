"""Remote Streamable HTTP upstreams: era detection, a lost session re-initialised once, and the
upstream's 401 and 429 turned into errors that say so. Real servers on loopback ports."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator

import anyio
import pytest

from mcpserve.gateway.health import upstream_state
from mcpserve.gateway.http import HttpSession
from mcpserve.server.app import MCPServer
from mcpserve.server.call import Call
from tests.gateway.support import UPSTREAM_APP, eventually, gateway, upstream_of
from tests.server.support import ELICIT, RecordingOutbound, legacy, modern, result_of, text_of
from tests.support.servers import free_port, node_launcher, running_server, wait_healthy

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

UPSTREAM_KEY = "mcps_upstream-key-for-gateway-tests"
NO_LIMITS = {"MCPSERVE_RATE_LIMIT_PER_MINUTE": "0", "MCPSERVE_RATE_LIMIT_PER_HOUR": "0"}


def _call(name: str, **arguments: object) -> Call:
    return modern("tools/call", {"name": name, "arguments": arguments})


def _session(server: MCPServer, name: str) -> HttpSession:
    pool = upstream_of(server, name).pool
    assert pool is not None
    session = pool.children["shared"].session
    assert isinstance(session, HttpSession)
    return session


async def test_a_2026_upstream_is_detected_and_served(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCPSERVE_TEST_UPSTREAM_KEY", UPSTREAM_KEY)
    env = {**NO_LIMITS, "MCPSERVE_API_KEYS": UPSTREAM_KEY}
    with running_server(env=env, auth=None) as url:
        headers = {"Authorization": {"env": "MCPSERVE_TEST_UPSTREAM_KEY", "prefix": "Bearer "}}
        async with gateway({"name": "demo", "url": url, "headers": headers}) as (server, d):
            assert _session(server, "demo").era == "modern"
            result = result_of(await d.handle(_call("demo__get_deployment_status", service="payments")))
            assert result["isError"] is False
            assert result["structuredContent"]["service"]["name"] == "payments"


YES = {"action": "accept", "content": {"confirm": True, "reason": "error rate"}}
PLAN = {"name": "demo__plan_rollback", "arguments": {"service": "payments"}}


async def test_a_2026_upstreams_question_reaches_clients_of_both_eras() -> None:
    with running_server(env=NO_LIMITS) as url:
        async with gateway({"name": "demo", "url": url}) as (_, d):
            # 2025-era client: a real request, answered, sent back as the upstream's retry.
            outbound = RecordingOutbound(answers=[YES])
            result = result_of(
                await d.handle(legacy("tools/call", PLAN, capabilities=ELICIT, outbound=outbound))
            )
            assert result["structuredContent"]["status"] == "planned", result
            assert [method for method, _ in outbound.requests] == ["elicitation/create"]
            # 2026-07-28 client: input_required, then the retry completes the parked call.
            first = result_of(await d.handle(modern("tools/call", PLAN, capabilities=ELICIT)))
            assert first["resultType"] == "input_required"
            (key,) = first["inputRequests"]
            retry = {**PLAN, "inputResponses": {key: YES}, "requestState": first["requestState"]}
            done = result_of(await d.handle(modern("tools/call", retry, request_id=2, capabilities=ELICIT)))
            assert done["structuredContent"]["status"] == "planned", done


async def test_an_upstream_refusing_the_gateways_credentials_fails_with_a_clear_reason() -> None:
    with running_server(env={**NO_LIMITS, "MCPSERVE_API_KEYS": UPSTREAM_KEY}, auth=None) as url:
        spec = {"name": "demo", "url": url, "restart_backoff": 0.01, "crash_loop_limit": 2}
        async with gateway(spec) as (server, _):
            state, reason = upstream_state(upstream_of(server, "demo"))
            assert state == "failed"
            assert reason is not None and "rejected the gateway's credentials (HTTP 401)" in reason


async def test_an_upstream_rate_limit_becomes_a_clear_error() -> None:
    env = {"MCPSERVE_RATE_LIMIT_PER_MINUTE": "2", "MCPSERVE_RATE_LIMIT_PER_HOUR": "0"}
    with running_server(env=env) as url:
        async with gateway({"name": "demo", "url": url}) as (_, d):
            results = [result_of(await d.handle(_call("demo__search_docs", query="redis"))) for _ in range(3)]
            assert [r["isError"] for r in results] == [False, False, True]
            assert "rate limiting the gateway (HTTP 429" in text_of(results[2])


@contextlib.contextmanager
def _fronted(command: list[str], port: int) -> Iterator[str]:
    """A third-party HTTP front for the test upstream, stopped after; yields its MCP URL."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_healthy(f"http://127.0.0.1:{port}/status", process)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        process.wait(timeout=10)


def _mcp_proxy(port: int) -> contextlib.AbstractContextManager[str]:
    """mcp-proxy (PyPI, mcp 1.x: 2025-era only, JSON responses) serving the test upstream."""
    command = [
        node_launcher("mcp-proxy"),
        "--transport",
        "streamablehttp",
        "--port",
        str(port),
        "--host",
        "127.0.0.1",
    ]
    return _fronted([*command, sys.executable, str(UPSTREAM_APP)], port)


def _supergateway(port: int) -> contextlib.AbstractContextManager[str]:
    """supergateway (npm; 2025-era Streamable HTTP with SSE responses) in front of the test upstream."""
    command = [node_launcher("supergateway"), "--stdio", f"{sys.executable} {UPSTREAM_APP}"]
    command += ["--outputTransport", "streamableHttp", "--stateful", "--port", str(port)]
    return _fronted([*command, "--healthEndpoint", "/status", "--logLevel", "none"], port)


async def test_a_2025_upstream_whose_session_expires_is_reinitialised_once() -> None:
    port = free_port()
    with contextlib.ExitStack() as first:
        url = first.enter_context(_mcp_proxy(port))
        async with gateway({"name": "legacy", "url": url}) as (server, d):
            session = _session(server, "legacy")
            assert session.era == "legacy"
            assert text_of(result_of(await d.handle(_call("legacy__echo", text="one")))) == "one"
            lost = session.session_id
            first.close()  # the upstream restarts, forgetting every session
            with _mcp_proxy(port):
                result = result_of(await d.handle(_call("legacy__echo", text="two")))
                assert result["isError"] is False, result
                assert text_of(result) == "two"
                assert session.session_id not in (None, lost)


async def test_a_2025_upstreams_progress_and_questions_cross_on_the_post_stream() -> None:
    with _supergateway(free_port()) as url:
        # supergateway passes a sessionless server/discover to a fresh child, which answers it:
        # pinned to 2025, every call stays on the one session and its one child.
        async with gateway({"name": "legacy", "url": url, "era": "2025"}) as (server, d):
            outbound = RecordingOutbound()
            call = legacy(
                "tools/call",
                {"name": "legacy__progress", "arguments": {"steps": 2}},
                progress_token="t",
                outbound=outbound,
            )
            assert text_of(result_of(await d.handle(call))) == "progressed"
            assert [p["progress"] for p in outbound.of("notifications/progress")] == [1, 2]
            asking = RecordingOutbound(answers=[{"action": "accept", "content": {"ok": True}}])
            confirm = {"name": "legacy__confirm", "arguments": {"question": "Go?"}}
            result = result_of(
                await d.handle(legacy("tools/call", confirm, capabilities=ELICIT, outbound=asking))
            )
            assert text_of(result) == "accept:True", result
            assert [method for method, _ in asking.requests] == ["elicitation/create"]
            # A cancelled call is cancelled upstream too, with a notice on the session.
            session = _session(server, "legacy")
            async with anyio.create_task_group() as group:
                group.start_soon(
                    d.handle, legacy("tools/call", {"name": "legacy__slow", "arguments": {"seconds": 30}})
                )
                await eventually(lambda: session.in_flight == 1)
                group.cancel_scope.cancel()
            await eventually(lambda: not session._notices)
            assert text_of(result_of(await d.handle(_call("legacy__echo", text="after")))) == "after"


async def test_an_upstream_pinned_to_2026_that_does_not_serve_it_fails() -> None:
    with _mcp_proxy(free_port()) as url:
        spec = {"name": "old", "url": url, "era": "2026", "restart_backoff": 0.01, "crash_loop_limit": 1}
        async with gateway(spec) as (server, _):
            state, reason = upstream_state(upstream_of(server, "old"))
            assert state == "failed"
            assert reason is not None and "does not serve 2026-07-28" in reason
