"""One behaviour suite every limiter backend must pass. Backends plug in through fixtures.

``advance(seconds)`` moves the backend's time on: a fake clock in memory, real waiting for Redis
(whose server time cannot be faked), so time-based checks use sub-second windows.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import anyio

from mcpserve.ratelimit.base import Budget, Limiter

Advance = Callable[[float], Awaitable[None]]


def budget(quota: int, window: float = 60.0, name: str = "minute") -> Budget:
    return Budget(f"{{{uuid.uuid4().hex}}}:{name}", quota, window, name)


async def check_exact_quota(limiter: Limiter) -> None:
    minute = budget(5)
    outcomes = [await limiter.hit([minute]) for _ in range(8)]
    assert [d.allowed for d in outcomes] == [True] * 5 + [False] * 3
    assert [d.decisive.remaining for d in outcomes[:5]] == [4, 3, 2, 1, 0]
    refused = outcomes[-1]
    assert refused.decisive.remaining == 0
    # Full within the window's first minute: the next hit fits just after the window closes.
    assert 59 <= refused.retry_after <= 61
    assert 59 < refused.decisive.retry_after <= 60.01


async def check_refusal_consumes_no_budget(limiter: Limiter) -> None:
    """A hit refused by one budget leaves every other budget untouched."""
    minute, hour = budget(10), budget(2, 3600.0, "hour")
    assert (await limiter.hit([minute, hour])).allowed
    assert (await limiter.hit([minute, hour])).allowed
    refused = await limiter.hit([minute, hour])
    assert not refused.allowed
    assert refused.decisive.budget is hour
    states = {s.budget.policy: s for s in refused.states}
    assert states["minute"].remaining == 8  # the refused hit did not count against the minute
    assert not states["minute"].refused
    # The minute budget alone still has exactly 8 hits left.
    alone = [await limiter.hit([minute]) for _ in range(9)]
    assert [d.allowed for d in alone] == [True] * 8 + [False]


async def check_keys_are_independent(limiter: Limiter) -> None:
    first, second = budget(1), budget(1)
    assert (await limiter.hit([first])).allowed
    assert not (await limiter.hit([first])).allowed
    assert (await limiter.hit([second])).allowed


async def check_concurrent_hits_never_exceed(limiter: Limiter, quota: int = 20, hits: int = 100) -> None:
    shared = budget(quota)
    allowed = 0

    async def one() -> None:
        nonlocal allowed
        if (await limiter.hit([shared])).allowed:
            allowed += 1

    async with anyio.create_task_group() as group:
        for _ in range(hits):
            group.start_soon(one)
    assert allowed == quota


async def check_window_slides(limiter: Limiter, advance: Advance, window: float) -> None:
    """After a full window the count becomes the previous window's and decays as time passes.

    With real waiting, time only ever runs late: the 1.26-window wait leaves the previous window
    0.74 of its weight, and the checks below hold down to 0.5, so a stall of up to a quarter of
    ``window`` (less 1%) anywhere in the sequence changes nothing. Redis passes ``window`` = 1 s:
    a stall of 240 ms.
    """
    short = budget(4, window, "short")
    assert all([(await limiter.hit([short])).allowed for _ in range(4)])
    refused = await limiter.hit([short])
    assert not refused.allowed
    assert refused.decisive.retry_after <= window * 1.05
    # A quarter into the next window the previous one weighs just under 3/4: floor(4 * 0.7x) = 2.
    await advance(window * 1.26)
    assert [(await limiter.hit([short])).allowed for _ in range(3)] == [True, True, False]
    await advance(window * 2.1)  # both windows over: the full quota again
    assert [(await limiter.hit([short])).allowed for _ in range(5)] == [True] * 4 + [False]
