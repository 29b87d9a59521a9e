"""The in-memory limiter passes the limiter contract suite, and keeps its table bounded."""

from __future__ import annotations

import pytest

from mcpserve.ratelimit.base import Budget
from mcpserve.ratelimit.memory import MemoryLimiter
from tests.ratelimit import contract
from tests.support.clock import FakeClock

pytestmark = pytest.mark.anyio


async def test_exact_quota() -> None:
    await contract.check_exact_quota(MemoryLimiter())


async def test_refusal_consumes_no_budget() -> None:
    await contract.check_refusal_consumes_no_budget(MemoryLimiter())


async def test_keys_are_independent() -> None:
    await contract.check_keys_are_independent(MemoryLimiter())


async def test_concurrent_hits_never_exceed() -> None:
    await contract.check_concurrent_hits_never_exceed(MemoryLimiter())


async def test_window_slides() -> None:
    clock = FakeClock()

    async def advance(seconds: float) -> None:  # the contract also drives Redis, which must wait
        clock.advance(seconds)

    await contract.check_window_slides(MemoryLimiter(clock), advance, 60.0)


async def test_retry_after_is_when_the_next_hit_fits() -> None:
    clock = FakeClock()
    limiter = MemoryLimiter(clock)
    minute = Budget("k", 2, 60.0, "minute")
    await limiter.hit([minute])
    clock.advance(30)
    await limiter.hit([minute])
    refused = await limiter.hit([minute])
    # Full in the current window: one more fits once it closes (30 s on) and decays a little.
    clock.advance(refused.decisive.retry_after - 0.01)
    assert not (await limiter.hit([minute])).allowed
    clock.advance(0.02)
    assert (await limiter.hit([minute])).allowed


async def test_expired_keys_are_swept() -> None:
    clock = FakeClock()
    limiter = MemoryLimiter(clock, sweep_at=10)
    for n in range(10):
        await limiter.hit([Budget(f"old{n}", 5, 1.0, "s")])
    assert len(limiter) == 10  # the first sweep found nothing expired and doubled its threshold
    clock.advance(5)
    for n in range(10):
        await limiter.hit([Budget(f"new{n}", 5, 1.0, "s")])
    assert len(limiter) == 10  # the sweep at 20 keys dropped the 10 expired ones
    await limiter.aclose()
    assert len(limiter) == 0
