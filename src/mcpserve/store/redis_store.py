"""Sessions and their resumable events in Redis: every replica reads and writes the same state.

Key layout (``P`` is the prefix, ``MCPSERVE_STATE_PREFIX``; docs/scaling.md has the full table):

- ``P{<sid>}:s``  hash: ``r`` record (JSON), ``v`` version, ``o`` owner digest, ``x`` the time the
  index entries below are good until, ``e`` the last event number. TTL: the idle timeout, slid
  by every load, update and touch.
- ``P{<sid>}:e``  stream of the session's events, ``MAXLEN`` the per-session bound; entry ids are
  ``0-<n>`` and each entry holds the stream id and the message. Same TTL as the session, same hash
  tag, so one script updates both atomically, on Redis Cluster too.
- ``P{index}:all`` and ``P{index}:o:<owner digest>``  sorted sets of session ids scored by the
  time (ms, Redis clock) their entry lapses, each expiring with its last entry. They count
  sessions for the caps; one hash tag, so the cap check and the insert are one atomic script.

Index entries are renewed lazily, so the hot path is one round trip: an entry is good until
``now + 1.5 x idle`` and renewed by the load that finds it good for less than one idle timeout,
at most once per half idle timeout per session. It therefore never lapses before its session;
a session that expired keeps its place in the counts for at most half an idle timeout (a delete
frees it at once). Every time is Redis's own (``TIME`` in scripts): replica clocks never matter.
"""

from __future__ import annotations

import hashlib
from typing import Any, Final

import orjson
import redis.asyncio as aioredis

from mcpserve.store.base import CreateOutcome, StoredSession
from mcpserve.store.events import event_id, parse_event_id, replay_from
from mcpserve.store.redis_connection import unavailable
from mcpserve.types import JSONObject

__all__ = ["RedisSessionStore", "RedisEventStore", "check_prefix"]

_NOW: Final = """
local clock = redis.call('time')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
"""

# Slide the session's and its events' TTL; renew the index entries when they run short.
# Expects KEYS[1] session, KEYS[2] events, `idle` (ms) and `good_until` (the x field) in scope;
# sets `renew` to the new good-until time, or 0.
_SLIDE: Final = (
    _NOW
    + """
redis.call('pexpire', KEYS[1], idle)
redis.call('pexpire', KEYS[2], idle)
local renew = 0
if tonumber(good_until) < now + idle then
  renew = now + math.floor(idle * 3 / 2)
  redis.call('hset', KEYS[1], 'x', renew)
end
"""
)

# ARGV: idle ms. Returns nil, or {record, version, renew, owner}.
_LOAD: Final = (
    """
local f = redis.call('hmget', KEYS[1], 'r', 'v', 'x', 'o')
if not f[1] then return nil end
local idle, good_until = tonumber(ARGV[1]), f[3]
"""
    + _SLIDE
    + "return {f[1], f[2], renew, f[4]}"
)

# ARGV: record, expected version (or '' for any), idle ms. Returns {0} or {1, renew, owner}.
_UPDATE: Final = (
    """
local f = redis.call('hmget', KEYS[1], 'v', 'x', 'o')
if not f[1] or (ARGV[2] ~= '' and f[1] ~= ARGV[2]) then return {0} end
redis.call('hset', KEYS[1], 'r', ARGV[1], 'v', tonumber(f[1]) + 1)
local idle, good_until = tonumber(ARGV[3]), f[2]
"""
    + _SLIDE
    + "return {1, renew, f[3]}"
)

# ARGV: idle ms. Returns {0} or {1, renew, owner}.
_TOUCH: Final = (
    """
local f = redis.call('hmget', KEYS[1], 'x', 'o')
if not f[1] then return {0} end
local idle, good_until = tonumber(ARGV[1]), f[1]
"""
    + _SLIDE
    + "return {1, renew, f[2]}"
)

# KEYS: all, owner (optional). ARGV: sid, max_sessions, max_per_owner, idle ms.
# Returns {0 full | 1 created | 2 owner full, good-until}.
_RESERVE: Final = (
    _NOW
    + """
redis.call('zremrangebyscore', KEYS[1], '-inf', now)
if redis.call('zcard', KEYS[1]) >= tonumber(ARGV[2]) then return {0, 0} end
if KEYS[2] then
  redis.call('zremrangebyscore', KEYS[2], '-inf', now)
  if redis.call('zcard', KEYS[2]) >= tonumber(ARGV[3]) then return {2, 0} end
end
local good_until = now + math.floor(tonumber(ARGV[4]) * 3 / 2)
for _, key in ipairs(KEYS) do
  redis.call('zadd', key, good_until, ARGV[1])
  -- an index lives as long as its longest entry ('NX' when it had no expiry yet: a new key)
  redis.call('pexpireat', key, good_until, 'GT')
  redis.call('pexpireat', key, good_until, 'NX')
end
return {1, good_until}
"""
)

# KEYS: all, owner (optional). ARGV: sid, good-until. Renews existing entries only.
_RENEW: Final = """
for _, key in ipairs(KEYS) do
  if redis.call('zadd', key, 'XX', 'GT', 'CH', ARGV[2], ARGV[1]) == 1 then
    redis.call('pexpireat', key, ARGV[2], 'GT')
  end
end
"""

# KEYS: session, events. ARGV: record, owner digest, good-until, idle ms.
_CREATE: Final = """
redis.call('del', KEYS[1], KEYS[2])
redis.call('hset', KEYS[1], 'r', ARGV[1], 'v', 1, 'o', ARGV[2], 'x', ARGV[3], 'e', 0)
redis.call('pexpire', KEYS[1], ARGV[4])
"""

# KEYS: session, events. Returns {deleted, owner digest}.
_DELETE: Final = """
local owner = redis.call('hget', KEYS[1], 'o')
local deleted = redis.call('del', KEYS[1])
redis.call('del', KEYS[2])
return {deleted, owner or ''}
"""

# KEYS: all. Returns the live count.
_COUNT: Final = (
    _NOW
    + """
redis.call('zremrangebyscore', KEYS[1], '-inf', now)
return redis.call('zcard', KEYS[1])
"""
)

# KEYS: session, events. ARGV: stream id, message, max events. Returns the event number, 0 if
# the session is gone (nothing is stored for it).
_APPEND: Final = """
local ttl = redis.call('pttl', KEYS[1])
if ttl <= 0 then return 0 end
local n = redis.call('hincrby', KEYS[1], 'e', 1)
redis.call('xadd', KEYS[2], 'MAXLEN', ARGV[3], '0-' .. n, 's', ARGV[1], 'm', ARGV[2])
redis.call('pexpire', KEYS[2], ttl)
return n
"""


def check_prefix(prefix: str) -> str:
    """A key prefix must not hold a hash tag of its own: the session id's tag must be the first."""
    if "{" in prefix or "}" in prefix:
        raise ValueError("a Redis key prefix cannot contain { or }")
    return prefix


def _owner_digest(owner: str) -> str:
    # Owners are principals or addresses: hashed, so keys stay short and name nobody.
    return hashlib.sha256(owner.encode()).hexdigest()[:32]


class RedisSessionStore:
    """Sessions in Redis: caps, versions and idle expiry hold cluster-wide."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str,
        idle_timeout: float,
        max_sessions: int,
        max_per_owner: int | None = None,
        max_events: int = 256,
    ) -> None:
        self.client = client
        self.prefix = check_prefix(prefix)
        self.max_events = max_events
        self._idle_ms = max(1, round(idle_timeout * 1000))
        self._max = max_sessions
        self._max_per_owner = max_per_owner
        self._all = f"{prefix}{{index}}:all"
        register = client.register_script
        self._load, self._update, self._touch = register(_LOAD), register(_UPDATE), register(_TOUCH)
        self._reserve, self._renew, self._create = register(_RESERVE), register(_RENEW), register(_CREATE)
        self._delete, self._count = register(_DELETE), register(_COUNT)

    def keys(self, session_id: str) -> list[str]:
        """The session's hash and its events stream (one hash tag)."""
        base = f"{self.prefix}{{{session_id}}}"
        return [base + ":s", base + ":e"]

    def _index_keys(self, owner: str | bytes) -> list[str]:
        if not owner:
            return [self._all]
        digest = owner.decode() if isinstance(owner, bytes) else owner
        return [self._all, f"{self.prefix}{{index}}:o:{digest}"]

    async def _renew_index(self, session_id: str, renew: Any, owner: str | bytes) -> None:
        if int(renew):
            await self._renew(keys=self._index_keys(owner), args=[session_id, int(renew)])

    async def create(self, session_id: str, record: JSONObject, *, owner: str | None = None) -> CreateOutcome:
        limited = owner is not None and self._max_per_owner is not None
        digest = _owner_digest(owner) if owner is not None else ""
        with unavailable:
            outcome, good_until = await self._reserve(
                keys=self._index_keys(digest if limited else ""),
                args=[session_id, self._max, self._max_per_owner or 0, self._idle_ms],
            )
            if outcome == 0:
                return CreateOutcome.FULL
            if outcome == 2:
                return CreateOutcome.OWNER_FULL
            # The index entry of an owner without a cap is not needed: record no owner then.
            await self._create(
                keys=self.keys(session_id),
                args=[orjson.dumps(record), digest if limited else "", good_until, self._idle_ms],
            )
        return CreateOutcome.CREATED

    async def load(self, session_id: str) -> StoredSession | None:
        with unavailable:
            found = await self._load(keys=self.keys(session_id), args=[self._idle_ms])
            if found is None:
                return None
            record, version, renew, owner = found
            await self._renew_index(session_id, renew, owner)
        return StoredSession(orjson.loads(record), int(version))

    async def _write(self, session_id: str, record: JSONObject, expected: str) -> bool:
        with unavailable:
            done = await self._update(
                keys=self.keys(session_id), args=[orjson.dumps(record), expected, self._idle_ms]
            )
            if done[0] == 0:
                return False
            await self._renew_index(session_id, done[1], done[2])
        return True

    async def update(self, session_id: str, record: JSONObject, *, expected_version: int) -> bool:
        return await self._write(session_id, record, str(expected_version))

    async def touch(self, session_id: str) -> bool:
        with unavailable:
            done = await self._touch(keys=self.keys(session_id), args=[self._idle_ms])
            if done[0] == 0:
                return False
            await self._renew_index(session_id, done[1], done[2])
        return True

    async def delete(self, session_id: str) -> bool:
        with unavailable:
            deleted, owner = await self._delete(keys=self.keys(session_id))
            if deleted:
                async with self.client.pipeline(transaction=False) as pipe:
                    for key in self._index_keys(owner):
                        pipe.zrem(key, session_id)
                    await pipe.execute()
        return bool(deleted)

    async def count(self) -> int:
        with unavailable:
            return int(await self._count(keys=[self._all]))

    async def get(self, session_id: str) -> JSONObject | None:
        stored = await self.load(session_id)
        return None if stored is None else stored.record

    async def put(self, session_id: str, record: JSONObject) -> None:
        await self._write(session_id, record, "")

    async def ping(self) -> None:
        """Readiness: raises StoreUnavailable unless Redis answers."""
        with unavailable:
            await self.client.ping()


class RedisEventStore:
    """A session's events in one Redis stream beside it: bounded, and expiring with it."""

    def __init__(self, sessions: RedisSessionStore) -> None:
        self._sessions = sessions
        self._append = sessions.client.register_script(_APPEND)

    async def append(self, session_id: str, stream_id: str, message: JSONObject) -> str:
        with unavailable:
            n = await self._append(
                keys=self._sessions.keys(session_id),
                args=[stream_id, orjson.dumps(message), self._sessions.max_events],
            )
        return event_id(stream_id, int(n))

    async def replay(
        self, session_id: str, last_event_id: str
    ) -> tuple[str, list[tuple[str, JSONObject]]] | None:
        parsed = parse_event_id(last_event_id)
        if parsed is None:
            return None
        with unavailable:
            entries: Any = await self._sessions.client.xrange(
                self._sessions.keys(session_id)[1], f"0-{parsed[1]}"
            )
        retained = (
            (int(entry_id.split(b"-", 1)[1]), fields[b"s"].decode(), orjson.loads(fields[b"m"]))
            for entry_id, fields in entries
        )
        return replay_from(parsed, retained)

    async def forget(self, session_id: str) -> None:
        with unavailable:
            await self._sessions.client.delete(self._sessions.keys(session_id)[1])
