"""Every backend passes the one store contract suite."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.store import contract
from tests.store.harness import MemoryHarness, RedisHarness

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["memory", "redis", "redis-cached"])
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[contract.Harness]:
    if request.param == "memory":
        yield MemoryHarness()
        return
    # redis-cached: what runtime wires with MCPSERVE_SESSION_CACHE_TTL, held to the same contract.
    redis = RedisHarness(cache_for=0.2 if request.param == "redis-cached" else 0.0)
    try:
        yield redis
    finally:
        await redis.aclose()


@pytest.mark.parametrize("check", contract.ALL, ids=lambda check: check.__name__.removeprefix("check_"))
async def test_contract(harness: contract.Harness, check: contract.Check) -> None:
    await check(harness)
