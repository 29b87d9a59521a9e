"""Rate and concurrency limits for tool calls, shared across replicas through Redis.

See ``docs/rate-limits.md`` for the policy and the wire contract.
"""

from mcpserve.ratelimit.base import Budget, BudgetState, Decision, Limiter, WindowCounts
from mcpserve.ratelimit.gate import Admitted, RateGate, Refused, ToolLimits
from mcpserve.ratelimit.headers import rate_limit_headers
from mcpserve.ratelimit.memory import MemoryLimiter

__all__ = [
    "Limiter",
    "Budget",
    "BudgetState",
    "Decision",
    "WindowCounts",
    "MemoryLimiter",
    "RateGate",
    "ToolLimits",
    "Admitted",
    "Refused",
    "rate_limit_headers",
]
