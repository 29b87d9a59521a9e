"""Cancellation reaches tool code: async tools at their await, sync tools through ``ctx.cancelled``."""

from __future__ import annotations

import threading

import anyio
import anyio.to_thread
import pytest

from mcpserve import Context, MCPServer
from tests.server.support import dispatcher, modern

pytestmark = pytest.mark.anyio


async def test_a_client_cancellation_is_visible_to_a_sync_tool() -> None:
    server = MCPServer()
    started, stopped = threading.Event(), threading.Event()

    @server.tool()
    def poll(ctx: Context) -> str:
        started.set()
        while not ctx.cancelled:
            threading.Event().wait(0.01)  # a blocking upstream call, polled cooperatively
        stopped.set()
        return "abandoned"

    d = dispatcher(server)
    async with anyio.create_task_group() as group:
        group.start_soon(d.handle, modern("tools/call", {"name": "poll"}))
        assert await anyio.to_thread.run_sync(started.wait, 5)
        group.cancel_scope.cancel()
    assert await anyio.to_thread.run_sync(stopped.wait, 5)


async def test_a_client_cancellation_reaches_an_async_tool_at_its_await() -> None:
    server = MCPServer()
    started, seen = anyio.Event(), anyio.Event()

    @server.tool()
    async def wait(ctx: Context) -> str:
        started.set()
        try:
            await anyio.sleep_forever()
        finally:
            seen.set()
        return "never"

    d = dispatcher(server)
    async with anyio.create_task_group() as group:
        group.start_soon(d.handle, modern("tools/call", {"name": "wait"}))
        with anyio.fail_after(5):
            await started.wait()
        group.cancel_scope.cancel()
    assert seen.is_set()
