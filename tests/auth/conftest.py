"""Fixtures the authentication tests share: a local issuer and an HTTP client for it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.support.issuer import LocalIssuer, local_issuer


@pytest.fixture(scope="module")
def issuer() -> Iterator[LocalIssuer]:
    """One issuer per test module (tests that rotate its keys override this per test)."""
    with local_issuer() as running:
        yield running


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False) as http:
        yield http
