"""Fixtures shared by the HTTP transport tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.redis_server import private_redis


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """A private redis-server for the module's Redis-backed cases, stopped after them."""
    with private_redis() as server:
        yield server.url
