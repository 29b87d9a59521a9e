"""The offender log: one line per offender and window, repeats counted, memory bounded."""

from __future__ import annotations

import resource

from mcpserve.transports.http.connections import ConnectionLimits, OffenderLog, default_max_connections


def test_one_line_per_offender_and_window_with_the_repeats_counted_into_the_next() -> None:
    log = OffenderLog(window=60.0)
    assert log.report("head_timeout", "10.0.0.1", 0.0, "slow head")
    assert not log.report("head_timeout", "10.0.0.1", 1.0, "slow head")
    assert not log.report("head_timeout", "10.0.0.1", 59.0, "slow head")
    assert log.report("head_timeout", "10.0.0.2", 2.0, "slow head")  # another address
    assert log.report("header_size", "10.0.0.1", 3.0, "big head")  # another offence
    assert log.report("head_timeout", "10.0.0.1", 61.0, "slow head")  # the window passed


def test_distinct_addresses_cannot_grow_it_past_its_bound() -> None:
    log = OffenderLog(max_entries=8)
    for index in range(100):
        assert log.report("connection_cap", f"10.0.{index}.1", float(index) / 1000, "cap")
    assert len(log._seen) <= 8


def test_the_default_cap_leaves_descriptors_for_everything_else() -> None:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert default_max_connections() == soft - soft // 8
    limits = ConnectionLimits(header_timeout=10, body_timeout=30)
    assert limits.watch_interval == 10
