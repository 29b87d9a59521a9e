"""The Redis limiter passes the same contract suite against the real Redis, and two clients on
separate pools (two replicas) share one budget."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import anyio
import pytest
import redis.exceptions

from mcpserve.ratelimit.base import Budget
from mcpserve.ratelimit.redis_backend import RedisLimiter
from tests.ratelimit import contract

pytestmark = pytest.mark.anyio
REDIS_URL = "redis://127.0.0.1:6379/0"


async def _cleanup(limiter: RedisLimiter) -> None:
    # Only the keys this test created (its own prefix); the server is shared.
    keys = [key async for key in limiter.client.scan_iter(match=limiter.prefix + "*")]
    if keys:
        await limiter.client.delete(*keys)
    await limiter.aclose()


@pytest.fixture
async def limiter() -> AsyncIterator[RedisLimiter]:
    backend = RedisLimiter(REDIS_URL, prefix=f"test-{uuid.uuid4().hex}:")
    await backend.open()
    try:
        yield backend
    finally:
        await _cleanup(backend)


async def wait(seconds: float) -> None:
    await anyio.sleep(seconds)  # Redis keeps its own time: this is the window passing, not a sync


async def test_exact_quota(limiter: RedisLimiter) -> None:
    await contract.check_exact_quota(limiter)


async def test_refusal_consumes_no_budget(limiter: RedisLimiter) -> None:
    await contract.check_refusal_consumes_no_budget(limiter)


async def test_keys_are_independent(limiter: RedisLimiter) -> None:
    await contract.check_keys_are_independent(limiter)


async def test_concurrent_hits_never_exceed(limiter: RedisLimiter) -> None:
    await contract.check_concurrent_hits_never_exceed(limiter)


# Redis keeps its own time, so only real waiting moves it: a window long enough that a stall of
# the test machine (240 ms, see check_window_slides) cannot change an outcome.
SLIDING_WINDOW = 1.0


async def test_window_slides(limiter: RedisLimiter) -> None:
    await contract.check_window_slides(limiter, wait, SLIDING_WINDOW)


async def test_a_stall_of_the_machine_does_not_change_the_outcome(limiter: RedisLimiter) -> None:
    async def stalled(seconds: float) -> None:
        await wait(seconds + 0.12)  # the stall the suite has to withstand

    await contract.check_window_slides(limiter, stalled, SLIDING_WINDOW)


async def test_two_replicas_share_one_budget(limiter: RedisLimiter) -> None:
    other = RedisLimiter(REDIS_URL, prefix=limiter.prefix, max_connections=8)
    await other.open()
    shared = Budget("{shared}:all:m", 50, 60.0, "minute")
    allowed = 0

    async def hit(backend: RedisLimiter) -> None:
        nonlocal allowed
        if (await backend.hit([shared])).allowed:
            allowed += 1

    try:
        # 400 concurrent hits over pools of 64 and 8 connections: the blocking pool waits.
        async with anyio.create_task_group() as group:
            for n in range(400):
                group.start_soon(hit, limiter if n % 2 else other)
    finally:
        await other.aclose()
    assert allowed == 50


async def test_ping(limiter: RedisLimiter) -> None:
    await limiter.ping()
    unreachable = RedisLimiter("redis://127.0.0.1:1/0", timeout=0.5)
    with pytest.raises(RuntimeError, match="not open"):
        await unreachable.hit([Budget("k", 1, 60.0, "minute")])
    await unreachable.open()
    with pytest.raises(redis.exceptions.ConnectionError):
        await unreachable.ping()
    await unreachable.aclose()
    with pytest.raises(RuntimeError, match="not open"):
        await unreachable.ping()
