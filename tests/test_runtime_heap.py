"""Serving starts with the startup heap collected, frozen out of later collections, and a larger
young generation."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from mcpserve import MCPServer, runtime
from mcpserve.config import Settings


class _Cycle:
    """Garbage only the cycle collector frees."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def manual_gc() -> Iterator[None]:
    """No automatic collections during the test (so only serve's own can free the cycle), and
    nothing left frozen after it."""
    was_enabled, thresholds = gc.isenabled(), gc.get_threshold()
    gc.disable()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
        if was_enabled:
            gc.enable()


@pytest.mark.usefixtures("manual_gc")
@pytest.mark.parametrize("transport", ["stdio", "http"])
def test_the_transport_starts_on_a_collected_and_frozen_heap(
    monkeypatch: pytest.MonkeyPatch, transport: str
) -> None:
    garbage = _Cycle()
    collected = weakref.ref(garbage)
    del garbage
    assert collected() is not None
    seen: list[tuple[int, object, int]] = []

    def transport_runs(_app: object, _settings: Settings) -> None:
        seen.append((gc.get_freeze_count(), collected(), gc.get_threshold()[0]))

    monkeypatch.setattr(runtime, "configure_logging", lambda _settings: None)
    monkeypatch.setattr(runtime, "run_stdio", transport_runs)
    monkeypatch.setattr("mcpserve.transports.http.serve.run_http", transport_runs)
    runtime.serve(MCPServer("heap"), transport=transport, auth="none")
    [(frozen, leftover, young)] = seen
    assert frozen > 0
    assert leftover is None  # collected before the freeze, not frozen for good
    assert young == 7_000  # young collections every 7,000 allocations, not every 700
