"""The handler pool: sync handlers run on worker threads, never on the event loop.

Real threads throughout; the tests synchronise with events, never with sleeps. A pool of one
worker makes the order of its calls, and so of their results on the loop, a FIFO to wait on.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
from collections.abc import Iterator
from typing import Any

import anyio
import anyio.to_thread
import pytest

from mcpserve.server.invoke import HandlerPool, invoke

pytestmark = pytest.mark.anyio

WAIT = 10  # seconds; a bound on every wait, never a way to let something happen

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="none")


class Gate:
    """A handler that blocks on its worker thread until the test opens the gate."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.opened = threading.Event()
        self.thread: str | None = None

    def __call__(self) -> str:
        self.thread = threading.current_thread().name
        self.started.set()
        if not self.opened.wait(WAIT):
            raise TimeoutError("the test never opened the gate")
        return "gate passed"

    async def wait_started(self) -> None:
        assert await anyio.to_thread.run_sync(self.started.wait, WAIT)


@contextlib.contextmanager
def loop_errors() -> Iterator[list[dict[str, Any]]]:
    """What reaches the running loop's exception handler (a late result set on a cancelled
    future would: InvalidStateError in a callback)."""
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    try:
        yield errors
    finally:
        loop.set_exception_handler(previous)


def _thread_name() -> str:
    return threading.current_thread().name


async def test_results_and_exceptions_reach_the_awaiting_request() -> None:
    pool = HandlerPool()
    failure = ValueError("bad input")

    def fail() -> None:
        raise failure

    assert await pool.submit(lambda: 42) == 42
    with pytest.raises(ValueError) as raised:
        await pool.submit(fail)
    assert raised.value is failure


async def test_handlers_never_run_on_the_loop_thread() -> None:
    pool = HandlerPool()
    loop_thread = threading.get_ident()
    assert await pool.submit(threading.get_ident) != loop_thread


async def test_invoke_passes_arguments_and_copies_the_callers_context() -> None:
    request_id.set("req-1")

    def handler(suffix: str) -> str:
        seen = request_id.get()
        request_id.set("changed by the handler")
        return seen + suffix

    assert await invoke(handler, False, {"suffix": "!"}) == "req-1!"
    assert request_id.get() == "req-1"  # the handler's change stayed in its copy


async def test_each_call_gets_its_own_copy_of_the_context() -> None:
    async def call(value: str) -> str:
        request_id.set(value)
        return str(await invoke(request_id.get, False, {}))

    seen: dict[str, str] = {}

    async def record(value: str) -> None:
        seen[value] = await call(value)

    async with anyio.create_task_group() as group:
        for value in ("a", "b", "c"):
            group.start_soon(record, value)
    assert seen == {"a": "a", "b": "b", "c": "c"}


async def test_a_burst_of_short_calls_is_drained_by_one_worker() -> None:
    pool = HandlerPool()
    assert await pool.submit(_thread_name)  # the first call starts the one worker
    names = await asyncio.gather(*(pool.submit(_thread_name) for _ in range(20)))
    assert len(set(names)) == 1


async def test_a_blocking_handler_does_not_stall_calls_after_it() -> None:
    pool = HandlerPool()
    gate = Gate()
    blocked = pool.submit(gate)
    await gate.wait_started()
    with anyio.fail_after(WAIT):
        neighbours = await asyncio.gather(*(pool.submit(_thread_name) for _ in range(5)))
    assert gate.thread not in neighbours  # they got a thread of their own
    assert not blocked.done()
    gate.opened.set()
    with anyio.fail_after(WAIT):
        assert await blocked == "gate passed"


async def test_the_pool_stops_growing_at_its_limit() -> None:
    pool = HandlerPool(max_workers=2)
    gates = [Gate(), Gate()]
    running = []
    for gate in gates:  # the second is submitted once the first blocks: then it gets a thread
        running.append(pool.submit(gate))
        await gate.wait_started()
    waiting = pool.submit(_thread_name)  # both workers busy, no room for a third
    for gate in gates:
        gate.opened.set()
    with anyio.fail_after(WAIT):
        assert await asyncio.gather(*running) == ["gate passed", "gate passed"]
        assert await waiting in {gate.thread for gate in gates}


async def test_cancelling_a_running_call_abandons_its_thread() -> None:
    pool = HandlerPool(max_workers=1)
    gate = Gate()
    with loop_errors() as errors:
        running = pool.submit(gate)
        await gate.wait_started()
        running.cancel()
        after = pool.submit(lambda: "after")  # queued behind the abandoned call on the one worker
        gate.opened.set()
        with anyio.fail_after(WAIT):
            assert await after == "after"  # so the abandoned call's outcome came back before it
    assert running.cancelled()
    assert errors == []


async def test_cancelling_a_queued_call_leaves_the_calls_around_it_alone() -> None:
    pool = HandlerPool(max_workers=1)
    gate = Gate()
    with loop_errors() as errors:
        running = pool.submit(gate)
        await gate.wait_started()
        queued = pool.submit(lambda: "nobody waits for this")
        queued.cancel()
        after = pool.submit(lambda: "after")
        gate.opened.set()
        with anyio.fail_after(WAIT):
            assert await after == "after"
            assert await running == "gate passed"
    assert queued.cancelled()
    assert errors == []


async def test_a_task_cancelled_while_it_awaits_a_handler_gets_cancelled_error() -> None:
    pool = HandlerPool(max_workers=1)
    gate = Gate()
    outcome: list[str] = []

    async def request() -> None:
        try:
            await pool.submit(gate)
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise

    async with anyio.create_task_group() as group:
        group.start_soon(request)
        await gate.wait_started()
        group.cancel_scope.cancel()
    assert outcome == ["cancelled"]
    gate.opened.set()
    with anyio.fail_after(WAIT):
        assert await pool.submit(lambda: "still serving") == "still serving"


async def test_a_loop_that_closes_while_its_handler_runs_leaves_the_worker_serving() -> None:
    pool = HandlerPool(max_workers=1)
    gate = Gate()

    def serve_and_close() -> None:
        """Another event loop, on its own thread, submits a call and closes while it runs."""
        other = asyncio.new_event_loop()

        async def submit() -> asyncio.Future[Any]:
            return pool.submit(gate)

        try:
            other.run_until_complete(submit())
            if not gate.started.wait(WAIT):
                raise TimeoutError("the handler never started")
        finally:
            other.close()

    await anyio.to_thread.run_sync(serve_and_close)
    gate.opened.set()  # its result now has no loop to go to
    with anyio.fail_after(WAIT):
        # The one worker takes this only after delivering (and dropping) the orphaned result.
        assert await pool.submit(lambda: "served") == "served"


async def test_a_handler_raising_base_exception_reaches_the_request_not_the_worker() -> None:
    pool = HandlerPool(max_workers=1)

    class Abort(BaseException):
        pass

    def abort() -> None:
        raise Abort

    with pytest.raises(Abort):
        await pool.submit(abort)
    with anyio.fail_after(WAIT):
        assert await pool.submit(lambda: "worker alive") == "worker alive"
