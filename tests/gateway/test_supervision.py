"""Supervision of stdio children: a kill mid-call, restart, crash loops, readiness, environment."""

from __future__ import annotations

import os
import signal
import sys
import time

import anyio
import orjson
import pytest

from mcpserve.gateway.health import upstream_state
from mcpserve.server.call import Call
from mcpserve.server.dispatch import Dispatcher
from mcpserve.server.readiness import readiness_report, run_checks
from tests.gateway.support import app_upstream, eventually, gateway, upstream_of
from tests.server.support import modern, result_of, text_of

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


def _call(name: str, arguments: dict[str, object] | None = None, request_id: int = 1) -> Call:
    return modern("tools/call", {"name": name, "arguments": arguments or {}}, request_id=request_id)


async def _text(d: Dispatcher, name: str, arguments: dict[str, object] | None = None) -> str:
    result = result_of(await d.handle(_call(name, arguments)))
    assert result["isError"] is False, result
    return text_of(result)


async def test_a_child_killed_mid_call_fails_that_call_fast_and_comes_back(checked_logs: object) -> None:
    async with gateway(app_upstream("test"), app_upstream("other")) as (server, d):
        first_pid = int(await _text(d, "test__pid"))
        supervisor = upstream_of(server, "test").pool.children["shared"]  # type: ignore[union-attr]
        outcome: dict[str, object] = {}
        others: list[dict[str, object]] = []

        async def slow_call() -> None:
            outcome["result"] = result_of(await d.handle(_call("test__slow", {"seconds": 30})))
            outcome["at"] = time.monotonic()

        async def other_calls() -> None:
            for n in range(20):
                others.append(
                    result_of(await d.handle(_call("other__echo", {"text": f"n{n}"}, request_id=n)))
                )

        async with server.bus.subscribe() as events, anyio.create_task_group() as group:
            group.start_soon(slow_call)
            await eventually(lambda: supervisor.in_flight == 1)
            killed_at = time.monotonic()
            os.kill(first_pid, signal.SIGKILL)
            group.start_soon(other_calls)
            await eventually(lambda: "result" in outcome, 5)
            # The next call waits for the restart and runs on the new child.
            second_pid = int(await _text(d, "test__pid"))
            back_at = time.monotonic()
            with anyio.fail_after(5):
                async for event in events:
                    if event["method"] == "notifications/tools/list_changed":
                        break

        failed = outcome["result"]
        assert isinstance(failed, dict)
        assert failed["isError"] is True
        assert "'test'" in text_of(failed) and "exited" in text_of(failed)
        assert float(outcome["at"]) - killed_at < 1.0  # type: ignore[arg-type]
        assert second_pid != first_pid
        assert back_at - killed_at < 5.0
        assert [r["isError"] for r in others] == [False] * 20
        assert supervisor.restarts == 1
        lines = [orjson.loads(line) for line in checked_logs.getvalue().splitlines()]  # type: ignore[attr-defined]
        stderr = [line for line in lines if line.get("event") == "upstream stderr"]
        assert {line["upstream"] for line in stderr} >= {"test", "other"}


BROKEN = {"name": "broken", "command": sys.executable, "args": ["-c", "import sys; sys.exit(3)"]}
FAST_LOOP = {"restart_backoff": 0.01, "crash_loop_limit": 3}


async def test_a_command_that_exits_at_once_ends_in_a_crash_loop_shown_in_readiness() -> None:
    async with gateway({**BROKEN, **FAST_LOOP}, app_upstream("test")) as (server, d):
        broken = upstream_of(server, "broken")
        await eventually(lambda: upstream_state(broken)[0] == "failed")
        _, reason = upstream_state(broken)
        assert reason is not None and "crash loop: 3 failures" in reason
        report = readiness_report(await run_checks(server.readiness_checks), server.noncritical_checks)
        assert report["status"] == "ready"
        assert report["degraded"] is True
        assert "crash loop" in report["checks"]["upstream:broken"]
        assert report["checks"]["upstream:test"] == "ok"
        assert await _text(d, "test__echo", {"text": "still serving"}) == "still serving"


async def test_every_upstream_failed_fails_readiness() -> None:
    async with gateway({**BROKEN, **FAST_LOOP}) as (server, _):
        await eventually(lambda: upstream_state(upstream_of(server, "broken"))[0] == "failed")
        report = readiness_report(await run_checks(server.readiness_checks), server.noncritical_checks)
        assert report["status"] == "not ready"
        assert report["checks"]["upstreams"] == "RuntimeError: all 1 upstreams failed"


async def test_children_get_an_allowlisted_environment_plus_their_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MCPSERVE_TEST_GATEWAY_SECRET", "not-for-children")
    monkeypatch.setenv("GATEWAY_PASSED_ON", "by request")
    upstream = app_upstream("test", env={"GREETING": "hello"}, env_allow=["GATEWAY_PASSED_ON"])
    async with gateway(upstream) as (_, d):
        assert await _text(d, "test__environment", {"name": "GREETING"}) == "hello"
        assert await _text(d, "test__environment", {"name": "GATEWAY_PASSED_ON"}) == "by request"
        assert await _text(d, "test__environment", {"name": "MCPSERVE_TEST_GATEWAY_SECRET"}) == ""
        assert await _text(d, "test__environment", {"name": "PATH"}) == os.environ["PATH"]


async def test_metrics_and_configuration_name_gateway_tools() -> None:
    from mcpserve.config import load_settings  # noqa: PLC0415
    from mcpserve.gateway.health import GatewayCollector  # noqa: PLC0415
    from mcpserve.runtime import build_dispatcher, build_rate_gate  # noqa: PLC0415

    async with gateway(app_upstream("test")) as (server, d):
        await _text(d, "test__echo", {"text": "counted"})
        samples = {
            (metric.name, sample.labels["upstream"]): sample.value
            for metric in GatewayCollector(server).collect()
            for sample in metric.samples
        }
        assert samples[("mcp_upstream_up", "test")] == 1.0
        assert samples[("mcp_upstream_calls", "test")] == 1.0
        served = [name for name in server.tool_names() if name.startswith("test__")]
        assert samples[("mcp_upstream_tools", "test")] == len(served) > 5
        # Per-tool settings may name gateway tools before they are listed.
        settings = load_settings(
            {
                "tool_timeouts": {"test__slow": 0.2},
                "tool_rate_limits": {"test__echo": {"per_minute": 1}},
                "tool_scopes": {"test__environment": ["admin"]},
            }
        )
        dispatcher = build_dispatcher(server, settings)
        assert dispatcher.tool_timeouts == {"test__slow": 0.2}
        assert build_rate_gate(server, settings) is not None
        assert server.registered_tool("test__environment").scopes == frozenset({"admin"})  # type: ignore[union-attr]


async def test_an_upstreams_list_changed_lists_it_again_and_is_announced() -> None:
    async with gateway(app_upstream("test")) as (server, d):
        async with server.bus.subscribe() as events:
            await _text(d, "test__grow", {"name": "grown"})
            with anyio.fail_after(10):
                async for event in events:
                    if event["method"] == "notifications/tools/list_changed":
                        break
        await eventually(lambda: server.registered_tool("test__grown") is not None)
        assert await _text(d, "test__grown") == "grown"
