"""Per-principal and per-session children: one each, never shared, capped, reaped when idle."""

from __future__ import annotations

import functools
import os
import time

import anyio
import pytest

from mcpserve.principal import Principal
from mcpserve.protocol.session import LegacySession
from tests.gateway.support import app_upstream, eventually, gateway, upstream_of
from tests.server.support import legacy, modern, result_of, text_of

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

ALICE = Principal("alice")
BOB = Principal("bob")
CAROL = Principal("carol")


async def _call(d: object, principal: Principal, name: str, **arguments: object) -> dict[str, object]:
    call = modern("tools/call", {"name": name, "arguments": arguments}, principal=principal)
    return result_of(await d.handle(call))  # type: ignore[attr-defined]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_two_principals_get_two_children_that_share_nothing() -> None:
    async with gateway(app_upstream("notes", isolation="per-principal")) as (server, d):
        alice_pid = int(text_of(await _call(d, ALICE, "notes__pid")))
        bob_pid = int(text_of(await _call(d, BOB, "notes__pid")))
        assert alice_pid != bob_pid
        await _call(d, ALICE, "notes__remember", note="alice's secret")
        bobs = await _call(d, BOB, "notes__remember", note="bob's note")
        assert bobs["structuredContent"] == {"result": ["bob's note"]}
        assert int(text_of(await _call(d, ALICE, "notes__pid"))) == alice_pid  # the same child again
        assert len(upstream_of(server, "notes").pool.children) == 2  # type: ignore[union-attr]


async def test_idle_children_are_reaped() -> None:
    async with gateway(app_upstream("notes", isolation="per-principal", idle_timeout=60)) as (server, d):
        pool = upstream_of(server, "notes").pool
        assert pool is not None
        pid = int(text_of(await _call(d, ALICE, "notes__pid")))
        assert await pool.reap() == 0  # used just now
        assert await pool.reap(time.monotonic() + 61) == 1
        assert pool.children == {}
        await eventually(lambda: not _alive(pid), 5)
        # The next call starts a fresh child.
        assert int(text_of(await _call(d, ALICE, "notes__pid"))) != pid


async def test_the_pool_cap_holds() -> None:
    async with gateway(app_upstream("notes", isolation="per-principal", max_children=2)) as (server, d):
        pool = upstream_of(server, "notes").pool
        assert pool is not None
        async with anyio.create_task_group() as group:
            for principal in (ALICE, BOB):
                group.start_soon(functools.partial(_call, d, principal, "notes__slow", seconds=30))
            await eventually(lambda: sum(s.in_flight for s in pool.children.values()) == 2)
            refused = await _call(d, CAROL, "notes__pid")
            assert refused["isError"] is True
            assert "2 children busy" in text_of(refused)
            assert len(pool.children) == 2
            group.cancel_scope.cancel()  # the slow calls end: cancelled upstream too
        # Once they are idle, the least recently used child makes room.
        carol_pid = int(text_of(await _call(d, CAROL, "notes__pid")))
        assert carol_pid > 0
        assert len(pool.children) == 2


async def test_per_session_children_follow_the_session() -> None:
    async with gateway(app_upstream("notes", isolation="per-session")) as (server, d):
        pids = []
        for session_id in ("s1", "s2"):
            call = legacy("tools/call", {"name": "notes__pid", "arguments": {}}, principal=ALICE)
            call.headers = {"mcp-session-id": session_id}
            call.session = LegacySession("2025-11-25", {}, {}, ALICE.key, True)
            pids.append(int(text_of(result_of(await d.handle(call)))))
        assert pids[0] != pids[1]
        assert len(upstream_of(server, "notes").pool.children) == 2  # type: ignore[union-attr]
