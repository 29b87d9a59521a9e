"""A sweep on a timer: one task per store, running while there is something to sweep.

Stores call :meth:`Sweeping.ensure` when they take in something that will expire; the task
sweeps every ``interval`` seconds and ends when ``pending()`` is false, so an empty store costs
no task. Memory is released on the timer, not when something next reads the store.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import anyio

__all__ = ["Sweeping"]


class Sweeping:
    __slots__ = ("_interval", "_pending", "_sweep", "_task")

    def __init__(self, sweep: Callable[[], object], pending: Callable[[], bool], interval: float) -> None:
        self._sweep = sweep
        self._pending = pending
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def ensure(self) -> None:
        """Start the task unless it runs on this loop (one left from another loop is replaced)."""
        task, loop = self._task, asyncio.get_running_loop()
        if task is None or task.done() or task.get_loop() is not loop:
            self._task = loop.create_task(self._run())

    async def _run(self) -> None:
        while self._pending():
            await anyio.sleep(self._interval)
            self._sweep()
