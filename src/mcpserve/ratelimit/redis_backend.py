"""Counters in Redis: every replica draws on the same budgets.

One Lua script checks and consumes all budgets of a hit atomically, timed by Redis itself
(``PTTL``), so replica clocks never matter. It is the multi-budget form of the ``limits``
package's ``acquire_sliding_window.lua``: that script takes one budget per call, so checking a
minute, an hour and a per-tool budget with it would either cost a round trip each or consume
some budgets for a hit that another refuses. Each budget uses two keys (previous and current
window); the keys of one hit share a hash tag, so the script also runs on Redis Cluster.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis

from mcpserve.ratelimit.base import Budget, Decision, WindowCounts, decide
from mcpserve.store.redis_connection import connect

__all__ = ["RedisLimiter"]

# KEYS: previous, current per budget. ARGV: quota, window in ms per budget.
# Returns {admitted, then previous, previous_ttl, current, current_ttl per budget}.
_HIT = """
local n = #ARGV / 2
local counts = {}
local admitted = 1
for i = 1, n do
  local quota, window = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  local previous_key, current_key = KEYS[2 * i - 1], KEYS[2 * i]
  local current_ttl = redis.call('pttl', current_key)
  if current_ttl > 0 and current_ttl < window then
    redis.call('rename', current_key, previous_key)
    redis.call('set', current_key, 0, 'PX', current_ttl + window)
  end
  local previous = tonumber(redis.call('get', previous_key)) or 0
  local previous_ttl = math.max(redis.call('pttl', previous_key), 0)
  local current = tonumber(redis.call('get', current_key)) or 0
  current_ttl = math.max(redis.call('pttl', current_key), 0)
  if math.floor(previous * previous_ttl / window) + current + 1 > quota then
    admitted = 0
  end
  counts[i] = {previous, previous_ttl, current, current_ttl}
end
local reply = {admitted}
for i = 1, n do
  local c = counts[i]
  if admitted == 1 then
    local window = tonumber(ARGV[2 * i])
    if c[4] > 0 then
      c[3] = redis.call('incr', KEYS[2 * i])
    else
      redis.call('set', KEYS[2 * i], 1, 'PX', 2 * window)
      c[3], c[4] = 1, 2 * window
    end
  end
  for j = 1, 4 do
    reply[#reply + 1] = c[j]
  end
end
return reply
"""


class RedisLimiter:
    """Budgets in Redis. :meth:`open` inside the event loop that will use it (a startup hook)."""

    def __init__(
        self, url: str, *, prefix: str = "mcpserve:rl:", max_connections: int = 64, timeout: float = 2.0
    ) -> None:
        self.url = url
        self.prefix = prefix
        self._max_connections = max_connections
        self._timeout = timeout
        self._client: aioredis.Redis | None = None
        self._script: Any = None

    @property
    def client(self) -> aioredis.Redis:
        if self._client is None:
            raise RuntimeError("RedisLimiter is not open")
        return self._client

    async def open(self) -> None:
        if self._client is None:
            self._client = connect(self.url, max_connections=self._max_connections, timeout=self._timeout)
            self._script = self._client.register_script(_HIT)

    async def hit(self, budgets: Sequence[Budget]) -> Decision:
        if self._script is None:
            raise RuntimeError("RedisLimiter is not open")
        keys: list[str] = []
        args: list[int] = []
        for budget in budgets:
            base = f"{self.prefix}{budget.key}"
            keys += (base + ":p", base + ":c")
            args += (budget.quota, round(budget.window * 1000))
        reply: list[Any] = await self._script(keys=keys, args=args)
        counts = [WindowCounts(*(int(v) for v in reply[1 + 4 * i : 5 + 4 * i])) for i in range(len(budgets))]
        return decide(budgets, counts, reply[0] == 1)

    async def ping(self) -> None:
        """Readiness: raises unless Redis answers."""
        await self.client.ping()

    async def aclose(self) -> None:
        client, self._client, self._script = self._client, None, None
        if client is not None:
            await client.aclose()
