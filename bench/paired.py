"""Ratios of two servers measured back to back, rep by rep, and how sure their median is.

On a shared machine the same server's req/s moves by 30% between reps, and its CPU time per
request with it (the machine's other tenants slow the core, not only the scheduler). Two servers
run one after the other within a rep see nearly the same machine, so the ratio of that pair
varies much less than either figure; its median over the reps, with a confidence interval that
assumes nothing about the distribution, says what one costs against the other and how sure that is.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from math import comb
from typing import Any

__all__ = ["PairedRatio", "median_interval", "paired_ratio"]


@dataclass(frozen=True)
class PairedRatio:
    """``values``: one ratio per rep in which both runs were valid."""

    values: list[float]
    median: float | None
    low: float | None  # the confidence interval of the median, None with too few reps
    high: float | None


def median_interval(values: Iterable[float], confidence: float = 0.95) -> tuple[float | None, float | None]:
    """A distribution-free interval for the median: order statistics k and n + 1 - k, k the
    largest with P(Binomial(n, 1/2) < k) <= (1 - confidence) / 2. (None, None) below 6 values at 95%."""
    ordered = sorted(values)
    n = len(ordered)
    tail = (1 - confidence) / 2
    k, below = 0, 0.0  # below: P(Binomial(n, 1/2) < k + 1) as k grows
    while k < n // 2:
        below += comb(n, k) / 2**n
        if below > tail:
            break
        k += 1
    if k == 0:
        return None, None
    return ordered[k - 1], ordered[n - k]


def paired_ratio(
    runs: list[dict[str, Any]], era: str, connections: int, over: str, under: str, key: str
) -> PairedRatio:
    """``over``'s ``key`` ÷ ``under``'s, for each rep where both ran validly at this point."""
    by_rep: dict[int, dict[str, float]] = {}
    for run in runs:
        if run["era"] == era and run["connections"] == connections and run["valid"] and run.get(key):
            by_rep.setdefault(run["rep"], {})[run["server"]] = run[key]
    values = [pair[over] / pair[under] for pair in by_rep.values() if over in pair and under in pair]
    low, high = median_interval(values)
    return PairedRatio(values, statistics.median(values) if values else None, low, high)
