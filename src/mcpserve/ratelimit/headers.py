"""HTTP fields describing a rate-limit decision.

``X-RateLimit-Limit/-Remaining/-Reset`` (the seeds' convention; Reset in epoch seconds) report the
budget closest to refusing; the IETF fields (draft-ietf-httpapi-ratelimit-headers)
``RateLimit-Policy: "minute";q=60;w=60`` and ``RateLimit: "minute";r=12;t=40`` list every budget.
"""

from __future__ import annotations

import math
import time

from mcpserve.ratelimit.base import BudgetState, Decision

__all__ = ["rate_limit_headers"]


def _policy_name(state: BudgetState) -> str:
    # An sf-string: printable ASCII with " and \\ escaped.
    name = state.budget.policy.encode("ascii", "replace").decode()
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _policy(state: BudgetState) -> str:
    window = f";w={math.ceil(state.budget.window)}" if state.budget.window else ""
    return f"{_policy_name(state)};q={state.budget.quota}{window}"


def _limit(state: BudgetState) -> str:
    return f"{_policy_name(state)};r={state.remaining};t={math.ceil(state.reset_after)}"


def rate_limit_headers(decision: Decision, now: float | None = None) -> list[tuple[bytes, bytes]]:
    decisive = decision.decisive
    reset_at = math.ceil((time.time() if now is None else now) + decisive.reset_after)
    headers = [
        (b"x-ratelimit-limit", str(decisive.budget.quota).encode()),
        (b"x-ratelimit-remaining", str(decisive.remaining).encode()),
        (b"x-ratelimit-reset", str(reset_at).encode()),
        (b"ratelimit-policy", ", ".join(_policy(s) for s in decision.states).encode()),
        (b"ratelimit", ", ".join(_limit(s) for s in decision.states).encode()),
    ]
    if not decision.allowed:
        headers.append((b"retry-after", str(decision.retry_after).encode()))
    return headers
