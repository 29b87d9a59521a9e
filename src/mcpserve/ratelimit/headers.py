"""HTTP fields describing a rate-limit decision.

``X-RateLimit-Limit/-Remaining/-Reset`` (the seeds' convention; Reset in epoch seconds) report the
budget closest to refusing; the IETF fields (draft-ietf-httpapi-ratelimit-headers)
``RateLimit-Policy: "minute";q=60;w=60`` and ``RateLimit: "minute";r=12;t=40`` list every budget.
"""

from __future__ import annotations

import functools
import math
import time

from mcpserve.ratelimit.base import Budget, BudgetState, Decision

__all__ = ["rate_limit_headers"]


@functools.lru_cache(maxsize=1024)
def _policy_name(policy: str) -> str:
    # An sf-string: printable ASCII with " and \\ escaped.
    name = policy.encode("ascii", "replace").decode()
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _policy(budget: Budget) -> str:
    window = f";w={math.ceil(budget.window)}" if budget.window else ""
    return f"{_policy_name(budget.policy)};q={budget.quota}{window}"


@functools.lru_cache(maxsize=4096)
def _policy_field(budgets: tuple[Budget, ...]) -> bytes:
    # Budgets hash by identity and the gate reuses them, so this is one lookup per response.
    return ", ".join([_policy(b) for b in budgets]).encode()


def _limit(state: BudgetState) -> str:
    return f"{_policy_name(state.budget.policy)};r={state.remaining};t={math.ceil(state.reset_after)}"


def rate_limit_headers(decision: Decision, now: float | None = None) -> list[tuple[bytes, bytes]]:
    decisive = decision.decisive
    reset_at = math.ceil((time.time() if now is None else now) + decisive.reset_after)
    headers = [
        (b"x-ratelimit-limit", str(decisive.budget.quota).encode()),
        (b"x-ratelimit-remaining", str(decisive.remaining).encode()),
        (b"x-ratelimit-reset", str(reset_at).encode()),
        (b"ratelimit-policy", _policy_field(tuple([s.budget for s in decision.states]))),
        (b"ratelimit", ", ".join([_limit(s) for s in decision.states]).encode()),
    ]
    if not decision.allowed:
        headers.append((b"retry-after", str(decision.retry_after).encode()))
    return headers
