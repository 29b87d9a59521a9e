"""Completions routed to the upstream that owns the reference; a failed upstream tried again."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from mcpserve.gateway.health import upstream_state
from tests.gateway.support import UPSTREAM_APP, eventually, gateway, upstream_of
from tests.server.support import error_of, modern, result_of
from tests.support.servers import node_launcher

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def test_completions_reach_the_upstream_with_their_context() -> None:
    everything = {"name": "everything", "command": node_launcher("mcp-server-everything"), "args": ["stdio"]}
    async with gateway(everything) as (server, d):
        assert "completions" in server.capabilities()
        ref = {"type": "ref/prompt", "name": "everything__completable-prompt"}
        first = {"ref": ref, "argument": {"name": "department", "value": "S"}}
        assert result_of(await d.handle(modern("completion/complete", first)))["completion"]["values"] == [
            "Sales",
            "Support",
        ]
        second = {
            **first,
            "argument": {"name": "name", "value": ""},
            "context": {"arguments": {"department": "Sales"}},
        }
        values = result_of(await d.handle(modern("completion/complete", second)))["completion"]["values"]
        assert values == ["David", "Eve", "Frank"]
        unknown = {
            "ref": {"type": "ref/prompt", "name": "everything__no-such-prompt"},
            "argument": first["argument"],
        }
        assert error_of(await d.handle(modern("completion/complete", unknown)))["code"] == -32601


async def test_a_failed_upstream_is_tried_again_once_the_window_has_passed(tmp_path: Path) -> None:
    # It exits until a file appears: a program that was broken, then fixed.
    fixed = tmp_path / "fixed"
    script = (
        "import os, sys, runpy; "
        f"os.path.exists({str(fixed)!r}) or sys.exit(1); "
        f"runpy.run_path({str(UPSTREAM_APP)!r}, run_name='__main__')"
    )
    spec = {
        "name": "flaky",
        "command": sys.executable,
        "args": ["-c", script],
        "restart_backoff": 0.01,
        "crash_loop_limit": 2,
        "crash_loop_window": 0.2,
    }
    async with gateway(spec) as (server, _):
        upstream = upstream_of(server, "flaky")
        assert upstream_state(upstream)[0] == "failed"
        fixed.touch()
        supervisor = upstream.pool.children["shared"]  # type: ignore[union-attr]
        # The next call after the window starts it again, and waits for it.
        last_crash = time.monotonic()
        await eventually(lambda: time.monotonic() - last_crash > 0.2)  # the window passes, crash-free
        session = await supervisor.ready_session()
        assert session.pid is not None
        assert upstream_state(upstream)[0] == "ready"
