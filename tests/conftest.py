"""Fixtures shared by the whole suite."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest

from mcpserve.observability.logs import configure_logging
from tests.support.logcheck import check_log_lines


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """Run every ``@pytest.mark.anyio`` test (and async fixture) on asyncio."""
    return "asyncio"


@pytest.fixture(autouse=True)
def checked_logs() -> Iterator[io.BytesIO]:
    """Capture every in-process log line of each test, at debug level, and check them all:
    valid JSON with the request fields, and no registered secret or credential."""
    captured = io.BytesIO()
    configure_logging("debug", captured)
    yield captured
    check_log_lines(captured.getvalue())
