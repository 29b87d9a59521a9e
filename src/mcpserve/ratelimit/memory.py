"""Counters in this process: one replica's budgets, for a single instance or for tests.

O(1) per budget and hit, no task per request; windows that ended are swept out in bulk once the
table has doubled since the last sweep, so many short-lived clients cannot grow it for ever.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from mcpserve.ratelimit.base import Budget, Decision, WindowCounts, decide, fits

__all__ = ["MemoryLimiter"]


class _Window:
    """Counters of one budget key; ``start`` is when its current window opened (ms)."""

    __slots__ = ("current", "previous", "start", "window")

    def __init__(self, start: float, window: float) -> None:
        self.start = start
        self.window = window
        self.previous = 0
        self.current = 0


class MemoryLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic, sweep_at: int = 10_000) -> None:
        self._clock = clock
        self._windows: dict[str, _Window] = {}
        self._sweep_at = sweep_at
        self._min_sweep = sweep_at

    def _counts(self, key: str, window_ms: float, now: float) -> tuple[_Window | None, WindowCounts]:
        entry = self._windows.get(key)
        if entry is not None and now >= entry.start + 2 * window_ms:
            entry = None  # both windows are over: like expired keys in Redis
            del self._windows[key]
        if entry is None:
            return None, WindowCounts(0, 0, 0, 0)
        if now >= entry.start + window_ms:  # the current window closed: it becomes the previous
            entry.previous, entry.current, entry.start = entry.current, 0, entry.start + window_ms
        previous_ttl = round(entry.start + window_ms - now) if entry.previous else 0
        return entry, WindowCounts(
            entry.previous, previous_ttl, entry.current, round(entry.start + 2 * window_ms - now)
        )

    async def hit(self, budgets: Sequence[Budget]) -> Decision:
        # No await between reading and writing the counters: the check-and-consume is atomic.
        now = self._clock() * 1000
        found = [self._counts(b.key, b.window * 1000, now) for b in budgets]
        if not all(fits(b, counts) for b, (_, counts) in zip(budgets, found, strict=True)):
            return decide(budgets, [counts for _, counts in found], False)
        after = []
        for budget, (found_entry, counts) in zip(budgets, found, strict=True):
            entry = found_entry
            if entry is None:
                window_ms = budget.window * 1000
                entry = self._windows[budget.key] = _Window(now, window_ms)
                after.append(WindowCounts(0, 0, 1, round(2 * window_ms)))
            else:
                after.append(
                    WindowCounts(counts.previous, counts.previous_ttl, counts.current + 1, counts.current_ttl)
                )
            entry.current += 1
        if len(self._windows) >= self._sweep_at:
            self._sweep(now)
        return decide(budgets, after, True)

    def _sweep(self, now: float) -> None:
        for key in [k for k, w in self._windows.items() if now >= w.start + 2 * w.window]:
            del self._windows[key]
        self._sweep_at = max(self._min_sweep, 2 * len(self._windows))

    def __len__(self) -> int:
        return len(self._windows)

    async def aclose(self) -> None:
        self._windows.clear()
