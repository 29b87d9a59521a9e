"""Counters in this process: one replica's budgets, for a single instance or for tests.

O(1) per budget and hit, no task per request; windows that ended are swept out in bulk once the
table has doubled since the last sweep, so many short-lived clients cannot grow it for ever.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from mcpserve.ratelimit.base import Budget, Decision, WindowCounts, decide

__all__ = ["MemoryLimiter"]

_EMPTY = WindowCounts(0, 0, 0, 0)


class _Window:
    """Counters of one budget key; ``start`` is when its current window opened (ms)."""

    __slots__ = ("current", "previous", "start", "window")

    def __init__(self, start: float, window: float, current: int = 0) -> None:
        self.start = start
        self.window = window
        self.previous = 0
        self.current = current


class MemoryLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic, sweep_at: int = 10_000) -> None:
        self._clock = clock
        self._windows: dict[str, _Window] = {}
        self._sweep_at = sweep_at
        self._min_sweep = sweep_at

    async def hit(self, budgets: Sequence[Budget]) -> Decision:
        # No await between reading and writing the counters: the check-and-consume is atomic.
        # Written out flat: this runs on every limited call.
        now = self._clock() * 1000
        windows = self._windows
        entries: list[_Window | None] = []
        counts: list[WindowCounts] = []
        admitted = True
        for budget in budgets:
            window_ms = budget.window * 1000
            entry = windows.get(budget.key)
            if entry is not None:
                age = now - entry.start
                if age >= 2 * window_ms:  # both windows are over: like expired keys in Redis
                    del windows[budget.key]
                    entry = None
                elif age >= window_ms:  # the current window closed: it becomes the previous one
                    entry.previous, entry.current, entry.start = entry.current, 0, entry.start + window_ms
            if entry is None:
                counts.append(_EMPTY)
            else:
                previous_ttl = round(entry.start + window_ms - now) if entry.previous else 0
                if entry.previous * previous_ttl // window_ms + entry.current >= budget.quota:
                    admitted = False
                counts.append(
                    WindowCounts(
                        entry.previous, previous_ttl, entry.current, round(entry.start + 2 * window_ms - now)
                    )
                )
            entries.append(entry)
        if not admitted:
            return decide(budgets, counts, False)
        for n, entry in enumerate(entries):
            if entry is None:
                window_ms = budgets[n].window * 1000
                windows[budgets[n].key] = _Window(now, window_ms, 1)
                counts[n] = WindowCounts(0, 0, 1, round(2 * window_ms))
            else:
                entry.current += 1
                counts[n] = counts[n]._replace(current=entry.current)
        if len(windows) >= self._sweep_at:
            self._sweep(now)
        return decide(budgets, counts, True)

    def _sweep(self, now: float) -> None:
        for key in [k for k, w in self._windows.items() if now >= w.start + 2 * w.window]:
            del self._windows[key]
        self._sweep_at = max(self._min_sweep, 2 * len(self._windows))

    def __len__(self) -> int:
        return len(self._windows)

    async def aclose(self) -> None:
        self._windows.clear()
