"""Every backend passes the one store contract suite."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.store import contract
from tests.store.harness import MemoryHarness

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["memory"])
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[contract.Harness]:
    yield MemoryHarness()


@pytest.mark.parametrize("check", contract.ALL, ids=lambda check: check.__name__.removeprefix("check_"))
async def test_contract(harness: contract.Harness, check: contract.Check) -> None:
    await check(harness)
