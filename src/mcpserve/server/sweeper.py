"""One background task per event loop, started when there is work and ending when there is none.

Used where a per-request task or timer would cost too much on the hot path: requests join a
shared collection, and one sweeper walks it every tick (deadlines, disconnect watchers).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

__all__ = ["Sweeper"]


class Sweeper:
    """Runs ``sweep`` (which returns once its owner has nothing left to watch) as one task.

    :meth:`ensure` starts it unless it already runs on that loop. The task is held here (the loop
    keeps only weak references); one left from another loop (a test's, a restarted server's) is
    replaced rather than reused.
    """

    __slots__ = ("_sweep", "_task")

    def __init__(self, sweep: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self._sweep = sweep
        self._task: asyncio.Task[None] | None = None

    def ensure(self, loop: asyncio.AbstractEventLoop) -> None:
        task = self._task
        if task is None or task.get_loop() is not loop:
            self._task = loop.create_task(self._run())

    async def _run(self) -> None:
        try:
            await self._sweep()
        finally:
            task = self._task
            if task is not None and task.get_loop() is asyncio.get_running_loop():
                self._task = None
