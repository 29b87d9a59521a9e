"""The rate-limit policy: budgets per caller and tool, the concurrency cap, and the HTTP fields."""

from __future__ import annotations

from collections.abc import Sequence

import anyio
import pytest

from mcpserve.errors import RateLimited
from mcpserve.principal import Principal
from mcpserve.ratelimit import MemoryLimiter, RateGate, ToolLimits, rate_limit_headers
from mcpserve.ratelimit.base import Budget, BudgetState, Decision
from mcpserve.server.admission import caller_key

pytestmark = pytest.mark.anyio


def test_caller_key_prefers_the_principal() -> None:
    alice = Principal("alice", issuer="https://issuer.example")
    assert caller_key(alice, "10.0.0.1") == "principal:" + alice.key
    assert caller_key(None, "10.0.0.1") == "address:10.0.0.1"
    assert caller_key(None, None) == "address:unknown"


def test_budgets_per_caller_and_configured_tool_only() -> None:
    gate = RateGate(MemoryLimiter(), per_minute=5, per_hour=50, tools={"costly": ToolLimits(1, 2, 0)})
    costly = gate.budgets("address:a", "costly")
    assert [(b.policy, b.quota, b.window, b.scope) for b in costly] == [
        ("minute", 5, 60.0, "principal"),
        ("hour", 50, 3600.0, "principal"),
        ("costly/minute", 1, 60.0, "tool"),
        ("costly/hour", 2, 3600.0, "tool"),
    ]
    assert len(gate.budgets("address:a", "unknown-tool")) == 2  # no keys for names nobody configured
    assert gate.budgets("address:a", None)[0].key != gate.budgets("address:b", None)[0].key
    assert all(b.key.startswith("{") and "}:" in b.key for b in costly)  # one hash tag per caller


def test_fields_escape_policy_names_and_report_the_decisive_budget() -> None:
    odd = BudgetState(Budget("k", 3, 60.0, 'we"ird\\tool/minute', "tool"), 0, 12.2, 12.2)
    fine = BudgetState(Budget("k2", 10, 3600.0, "hour"), 7, 100.0, 0.0)
    headers = dict(rate_limit_headers(Decision(False, (fine, odd)), now=1000.0))
    assert headers[b"x-ratelimit-limit"] == b"3"
    assert headers[b"x-ratelimit-remaining"] == b"0"
    assert headers[b"x-ratelimit-reset"] == b"1013"
    assert headers[b"retry-after"] == b"13"
    assert headers[b"ratelimit-policy"] == b'"hour";q=10;w=3600, "we\\"ird\\\\tool/minute";q=3;w=60'
    assert headers[b"ratelimit"] == b'"hour";r=7;t=100, "we\\"ird\\\\tool/minute";r=0;t=13'


async def test_concurrency_cap_refuses_without_consuming_budget_and_reports_rejections() -> None:
    rejected: list[str] = []
    gate = RateGate(
        MemoryLimiter(),
        per_minute=10,
        per_hour=0,
        tools={"slow": ToolLimits(concurrency=2)},
        on_reject=rejected.append,
    )
    first, second = await gate.admit("c", "slow"), await gate.admit("c", "slow")
    assert first.error is None and second.error is None
    third = await gate.admit("c", "slow")
    assert isinstance(third.error, RateLimited)
    assert third.error.retry_after == 1
    third.release()  # nothing held: harmless
    first.release()
    first.release()  # idempotent: gives back one slot only
    fourth = await gate.admit("c", "slow")
    assert fourth.error is None
    # 3 admitted calls consumed the minute budget; the refused one did not.
    assert dict(fourth.headers())[b"ratelimit"].startswith(b'"minute";r=7;')
    for _ in range(7):
        (await gate.admit("c", None)).release()
    over = await gate.admit("c", None)
    assert over.error is not None
    assert rejected == ["concurrency", "principal"]


async def test_a_refused_budget_gives_the_concurrency_slot_back() -> None:
    gate = RateGate(
        MemoryLimiter(), per_minute=0, per_hour=0, tools={"t": ToolLimits(per_minute=1, concurrency=1)}
    )
    (await gate.admit("c", "t")).release()
    refused = await gate.admit("c", "t")
    assert refused.error is not None
    assert dict(refused.headers())[b"x-ratelimit-limit"] == b"1"
    assert gate._inflight["t"] == 0


class _Stuck:
    async def hit(self, budgets: Sequence[Budget]) -> Decision:
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        return None


async def test_cancelled_admission_gives_the_slot_back() -> None:
    gate = RateGate(_Stuck(), per_minute=1, per_hour=0, tools={"t": ToolLimits(concurrency=1)})
    with anyio.move_on_after(0.05):  # the client went away while the limiter was busy
        await gate.admit("c", "t")
    assert gate._inflight["t"] == 0


async def test_tool_with_only_a_cap_reports_it() -> None:
    gate = RateGate(MemoryLimiter(), per_minute=0, per_hour=0, tools={"t": ToolLimits(concurrency=3)})
    admitted = await gate.admit("c", "t")
    assert dict(admitted.headers())[b"ratelimit-policy"] == b'"t/concurrency";q=3'
    assert dict(admitted.headers())[b"x-ratelimit-remaining"] == b"2"
    admitted.release()
