"""Per-request deadlines without a timer per request.

A timer per request (``asyncio.timeout``) costs a heap entry and its cleanup on the hot path.
Here a request costs one set insert and removal; one sweeper task per event loop cancels the
requests whose deadline has passed, with ``tick`` seconds of slack: at most a quarter of the
shortest limit seen, between 0.01 s and 0.25 s.
"""

from __future__ import annotations

import asyncio

from mcpserve.server.sweeper import Sweeper

__all__ = ["Deadline", "DeadlineKeeper"]


class Deadline:
    """One running request's deadline; ``expired`` tells a cancellation came from here."""

    __slots__ = ("at", "expired", "task")

    def __init__(self, task: asyncio.Task[object], at: float) -> None:
        self.task = task
        self.at = at
        self.expired = False


class DeadlineKeeper:
    def __init__(self, tick: float = 0.25) -> None:
        self._tick = tick
        self._shortest = float("inf")
        self._active: set[Deadline] = set()
        self._sweeper = Sweeper(self._sweep)

    def start(self, seconds: float, task: asyncio.Task[object] | None = None) -> Deadline:
        """Cancel ``task`` (the current one if not given) once ``seconds`` have passed, unless
        ``stop`` comes first. Passing the task saves looking it up: on Python 3.11 each lookup of
        the running loop is a ``getpid`` system call."""
        if seconds < self._shortest:
            self._shortest = seconds
            self._tick = min(self._tick, max(seconds / 4, 0.01))  # a floor keeps the sweeper off a busy loop
        if task is None:
            task = asyncio.current_task()
            assert task is not None
        loop = task.get_loop()
        deadline = Deadline(task, loop.time() + seconds)
        self._active.add(deadline)
        self._sweeper.ensure(loop)
        return deadline

    def stop(self, deadline: Deadline) -> None:
        self._active.discard(deadline)

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        while self._active:
            await asyncio.sleep(self._tick)
            now = loop.time()
            for deadline in [d for d in self._active if d.at <= now and not d.expired]:
                deadline.expired = True
                deadline.task.cancel()
