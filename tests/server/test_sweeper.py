"""The shared sweeper: one task per loop, started on demand, gone once its work is done."""

from __future__ import annotations

import asyncio

from mcpserve.server.sweeper import Sweeper


class Work:
    """A sweep that runs until released; counts how many times a sweeper task started it."""

    def __init__(self) -> None:
        self.starts = 0
        self.release = asyncio.Event()

    async def sweep(self) -> None:
        self.starts += 1
        await self.release.wait()


def test_one_task_while_it_runs_and_a_new_one_after_it_ended() -> None:
    async def scenario() -> None:
        work = Work()
        sweeper = Sweeper(work.sweep)
        loop = asyncio.get_running_loop()
        sweeper.ensure(loop)
        sweeper.ensure(loop)
        task = sweeper._task
        assert task is not None
        await asyncio.sleep(0)
        assert work.starts == 1
        work.release.set()
        await task
        assert sweeper._task is None  # ended with nothing left: the next ensure starts afresh
        sweeper.ensure(loop)
        assert sweeper._task is not None and sweeper._task is not task
        await sweeper._task
        assert work.starts == 2

    asyncio.run(scenario())


def test_a_sweeper_cancelled_with_its_loop_starts_afresh_on_the_next() -> None:
    work = Work()
    sweeper = Sweeper(work.sweep)

    async def start_and_leave() -> asyncio.Task[None] | None:
        sweeper.ensure(asyncio.get_running_loop())
        await asyncio.sleep(0)
        return sweeper._task  # asyncio.run cancels it on the way out

    first = asyncio.run(start_and_leave())
    assert first is not None and first.cancelled()

    async def on_a_new_loop() -> None:
        work.release = asyncio.Event()
        sweeper.ensure(asyncio.get_running_loop())
        second = sweeper._task
        assert second is not None and second is not first
        work.release.set()
        await second

    asyncio.run(on_a_new_loop())
    assert work.starts == 2
