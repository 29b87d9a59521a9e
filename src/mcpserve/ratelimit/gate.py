"""The rate-limit policy: which budgets a ``tools/call`` draws on, and the per-tool concurrency cap.

Per caller (principal, or client address when unauthenticated) there is an overall budget per
minute and per hour over every tool, and optional per-tool budgets. All of a call's budgets are
checked and consumed in one atomic step by the :class:`~mcpserve.ratelimit.base.Limiter`.

The concurrency cap is per replica: it protects what one process holds (threads, connections to
a backend), and a replica that dies cannot leak slots held elsewhere. A call over the cap is
refused at once (no queueing), before any budget is consumed.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from mcpserve.errors import RateLimited
from mcpserve.ratelimit.base import Budget, BudgetState, Decision, Limiter
from mcpserve.ratelimit.headers import rate_limit_headers

__all__ = ["Admitted", "RateGate", "Refused", "ToolLimits"]

logger = logging.getLogger("mcpserve.ratelimit")
_MINUTE, _HOUR = 60.0, 3600.0
_WARN_EVERY = 30.0
_PLAN_CACHE = 10_000


@dataclass(slots=True, frozen=True)
class ToolLimits:
    """Limits of one tool; 0 means no limit of that kind."""

    per_minute: int = 0
    per_hour: int = 0
    concurrency: int = 0


class Admitted:
    """A call that may run, and the fields describing the budgets it drew on."""

    __slots__ = ("_slot", "decision")
    error: RateLimited | None = None

    def __init__(self, decision: Decision | None, slot: Callable[[], None] | None = None) -> None:
        self.decision = decision
        self._slot = slot

    def headers(self) -> list[tuple[bytes, bytes]]:
        return rate_limit_headers(self.decision) if self.decision is not None else []

    def release(self) -> None:
        slot, self._slot = self._slot, None
        if slot is not None:
            slot()


class Refused:
    """A call over a limit: the error to answer and the fields to send with it."""

    __slots__ = ("decision", "error")

    def __init__(self, decision: Decision) -> None:
        self.decision = decision
        self.error = RateLimited(decision.retry_after)

    def headers(self) -> list[tuple[bytes, bytes]]:
        return rate_limit_headers(self.decision)

    def release(self) -> None:
        return None


class RateGate:
    def __init__(
        self,
        limiter: Limiter,
        *,
        per_minute: int,
        per_hour: int,
        tools: Mapping[str, ToolLimits] | None = None,
        on_reject: Callable[[str], None] | None = None,
    ) -> None:
        self.limiter = limiter
        self.per_minute = per_minute
        self.per_hour = per_hour
        self.tools = dict(tools or {})
        self.on_reject = on_reject
        self._inflight: dict[str, int] = {}
        self._warned_at = -_WARN_EVERY
        # The same callers call the same tools: their budgets are built once (bounded cache).
        self._plans: dict[tuple[str, str | None], tuple[Budget, ...]] = {}
        self._caps = {
            name: Budget("", limits.concurrency, 0.0, f"{name}/concurrency", "concurrency")
            for name, limits in self.tools.items()
            if limits.concurrency
        }

    def budgets(self, caller: str, tool: str | None) -> tuple[Budget, ...]:
        key = (caller, tool if tool in self.tools else None)
        plan = self._plans.get(key)
        if plan is None:
            if len(self._plans) >= _PLAN_CACHE:
                self._plans.clear()
            plan = self._plans[key] = tuple(self._budgets(*key))
        return plan

    def _budgets(self, caller: str, tool: str | None) -> list[Budget]:
        # Hashed: keys stay short and free of hash-tag braces, whatever the principal is called.
        who = "{" + hashlib.blake2b(caller.encode(), digest_size=12).hexdigest() + "}"
        budgets = []
        if self.per_minute:
            budgets.append(Budget(f"{who}:all:m", self.per_minute, _MINUTE, "minute"))
        if self.per_hour:
            budgets.append(Budget(f"{who}:all:h", self.per_hour, _HOUR, "hour"))
        limits = self.tools.get(tool) if tool is not None else None
        if limits is not None:  # only configured (registered) tools get keys of their own
            if limits.per_minute:
                budgets.append(
                    Budget(f"{who}:t:{tool}:m", limits.per_minute, _MINUTE, f"{tool}/minute", "tool")
                )
            if limits.per_hour:
                budgets.append(Budget(f"{who}:t:{tool}:h", limits.per_hour, _HOUR, f"{tool}/hour", "tool"))
        return budgets

    async def admit(self, caller: str, tool: str | None) -> Admitted | Refused:
        cap = self._caps.get(tool) if tool is not None else None
        slot: _Slot | None = None
        extra: tuple[BudgetState, ...] = ()
        if cap is not None and tool is not None:
            running = self._inflight.get(tool, 0)
            state = _concurrency(cap, running)
            if running >= cap.quota:
                return self._refuse(Decision(False, (state,)))
            self._inflight[tool] = running + 1  # taken before awaiting, so the cap holds
            slot = _Slot(self._inflight, tool)
            extra = (state,)
        budgets = self.budgets(caller, tool)
        if not budgets:
            return Admitted(Decision(True, extra) if extra else None, slot)
        try:
            decision = await self.limiter.hit(budgets)
        except Exception:
            # Fail open: a limiter outage must not take the service down (readiness reports it).
            self._warn_unavailable()
            return Admitted(Decision(True, extra) if extra else None, slot)
        except BaseException:
            if slot is not None:
                slot()
            raise
        if not decision.allowed:
            if slot is not None:
                slot()
            return self._refuse(decision)
        return Admitted(Decision(True, decision.states + extra), slot)

    def _refuse(self, decision: Decision) -> Refused:
        if self.on_reject is not None:
            self.on_reject(decision.decisive.budget.scope)
        return Refused(decision)

    def _warn_unavailable(self) -> None:
        now = time.monotonic()
        if now - self._warned_at >= _WARN_EVERY:
            self._warned_at = now
            logger.warning("rate limiter unavailable; admitting calls unlimited", exc_info=True)


class _Slot:
    """Gives back one concurrency slot of a tool, once."""

    __slots__ = ("_inflight", "_tool")

    def __init__(self, inflight: dict[str, int], tool: str) -> None:
        self._inflight = inflight
        self._tool = tool

    def __call__(self) -> None:
        self._inflight[self._tool] -= 1


def _concurrency(cap: Budget, running: int) -> BudgetState:
    if running >= cap.quota:
        return BudgetState(cap, 0, 1.0, 1.0)
    return BudgetState(cap, cap.quota - running - 1, 0.0, 0.0)
