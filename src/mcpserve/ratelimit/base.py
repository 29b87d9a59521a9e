"""The limiter seam: budgets in, one decision out. Backends differ only in where counters live.

Every backend runs the same sliding-window counter (the algorithm of the ``limits`` package's
``SlidingWindowCounterRateLimiter``): a window of ``w`` seconds keeps the count of the current
window and of the previous one, and a hit is admitted when
``floor(previous * remaining_share_of_previous) + current + 1 <= quota``. All budgets of one hit
are checked and consumed in one atomic step: a hit refused by any budget consumes none.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

__all__ = ["Budget", "BudgetState", "Decision", "Limiter", "WindowCounts", "decide"]


@dataclass(slots=True, frozen=True, eq=False)  # identity: budgets are built once and reused
class Budget:
    """``quota`` hits per ``window`` seconds for ``key``; ``policy`` names it on the wire.

    ``scope`` says what the budget limits (``principal`` overall or ``tool``), for metrics.
    """

    key: str
    quota: int
    window: float
    policy: str
    scope: str = "principal"


class WindowCounts(NamedTuple):
    """One budget's counters after a hit, times in milliseconds relative to now.

    ``previous_ttl`` is how long the previous window still weighs (it is the share of the current
    window left); ``current_ttl`` is twice the window from the current window's start, as the
    counter keys expire (0: no counter yet).
    """

    previous: int
    previous_ttl: int
    current: int
    current_ttl: int


class BudgetState(NamedTuple):
    budget: Budget
    remaining: int
    reset_after: float  # seconds until the current window closes (or, when refused, retry_after)
    retry_after: float  # seconds until one more hit fits; 0 when this budget admits the hit

    @property
    def refused(self) -> bool:
        return self.retry_after > 0


class Decision(NamedTuple):
    """The outcome of one hit over several budgets. ``decisive`` is the budget to report."""

    allowed: bool
    states: tuple[BudgetState, ...]

    @property
    def decisive(self) -> BudgetState:
        if self.allowed:
            return min(self.states, key=lambda s: s.remaining)
        return max((s for s in self.states if s.refused), key=lambda s: s.retry_after)

    @property
    def retry_after(self) -> int:
        """Whole seconds to wait before retrying (at least 1 when refused)."""
        return 0 if self.allowed else max(1, math.ceil(self.decisive.retry_after))


class Limiter(Protocol):
    """Where counters live. ``hit`` admits one call against every budget, or none of them."""

    async def hit(self, budgets: Sequence[Budget]) -> Decision: ...

    async def aclose(self) -> None: ...


def _weighted(counts: WindowCounts, window_ms: float) -> int:
    return math.floor(counts.previous * counts.previous_ttl / window_ms) + counts.current


def _retry_ms(quota: int, window_ms: float, counts: WindowCounts) -> float:
    """Milliseconds until one more hit fits, if nothing else hits meanwhile."""
    to_window_end = max(0.0, counts.current_ttl - window_ms)
    room = quota - counts.current
    if room >= 1 and counts.previous:
        # Still in this window: wait until the previous window's weight drops enough.
        wait = counts.previous_ttl - window_ms * room / counts.previous
        if wait < to_window_end:
            return max(0.0, wait) + 1
    # After the window closes the current count becomes the previous one and decays in turn.
    decay = window_ms - window_ms * quota / counts.current if counts.current > quota else 0.0
    return to_window_end + max(0.0, decay) + 1


def state_of(budget: Budget, counts: WindowCounts, admitted: bool) -> BudgetState:
    """Reportable state of one budget from its counters (after the hit, if it was admitted)."""
    window_ms = budget.window * 1000
    remaining = budget.quota - _weighted(counts, window_ms)
    if admitted or remaining >= 1:
        remaining = max(0, remaining)
        reset = max(0.0, counts.current_ttl - window_ms) / 1000 if counts.current_ttl else budget.window
        return BudgetState(budget, remaining, reset, 0.0)
    retry = _retry_ms(budget.quota, window_ms, counts) / 1000
    return BudgetState(budget, max(0, remaining), retry, retry)


def decide(budgets: Sequence[Budget], counts: Sequence[WindowCounts], admitted: bool) -> Decision:
    return Decision(admitted, tuple([state_of(b, c, admitted) for b, c in zip(budgets, counts, strict=True)]))
