"""A per-replica read cache in front of a shared SessionStore, keeping Redis off the hot path.

A session busy with many requests is read from Redis at most once per ``fresh_for`` seconds on
each replica; the reads in between are served from this replica's memory.

Invalidation, and what it costs:

- Only reads fill the cache. This replica's own writes (``update``, ``put``, ``delete``) evict
  the entry, so its next read fetches the new version (and after a failed compare-and-set, what
  another replica wrote). A replica therefore never loses a write, and sees its own at once;
  sessions that are created and then left idle are never held here.
- What another replica changes (``logging/setLevel``, subscriptions, a DELETE) is seen here
  within ``fresh_for``: the entry is simply re-read once it is that old. No message is needed,
  so a lost pub/sub message or a Redis restart cannot leave a stale entry behind for longer.
- The idle expiry still slides: the re-read is a real ``load``, and idle timeouts are minutes
  while ``fresh_for`` is about a second. A ``touch`` soon after a real read is skipped.

The cache is bounded (``max_entries``, oldest first out), and a timer drops entries once they
are no longer fresh, so an idle session costs a replica no memory.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from mcpserve.store.base import CreateOutcome, SessionStore, StoredSession
from mcpserve.store.sweeping import Sweeping
from mcpserve.types import JSONObject

__all__ = ["CachedSessionStore"]


class CachedSessionStore:
    def __init__(
        self,
        inner: SessionStore,
        *,
        fresh_for: float = 1.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.inner = inner
        self._fresh_for = fresh_for
        self._max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, StoredSession]] = OrderedDict()
        self._sweeper = Sweeping(self._prune, lambda: bool(self._entries), fresh_for)

    def _remember(self, session_id: str, stored: StoredSession) -> None:
        entries = self._entries
        entries[session_id] = (self._clock(), stored)
        entries.move_to_end(session_id)
        if len(entries) > self._max_entries:
            entries.popitem(last=False)
        self._sweeper.ensure()

    def _prune(self) -> None:
        """Oldest first: drop what is no longer fresh, so idle sessions cost this replica nothing."""
        entries, now = self._entries, self._clock()
        while entries and now - next(iter(entries.values()))[0] >= self._fresh_for:
            entries.popitem(last=False)

    def _fresh(self, session_id: str) -> StoredSession | None:
        entry = self._entries.get(session_id)
        if entry is None:
            return None
        if self._clock() - entry[0] >= self._fresh_for:
            del self._entries[session_id]
            return None
        return entry[1]

    def __len__(self) -> int:
        return len(self._entries)

    async def create(self, session_id: str, record: JSONObject, *, owner: str | None = None) -> CreateOutcome:
        return await self.inner.create(session_id, record, owner=owner)

    async def load(self, session_id: str) -> StoredSession | None:
        stored = self._fresh(session_id)
        if stored is not None:
            return stored
        stored = await self.inner.load(session_id)
        if stored is not None:
            self._remember(session_id, stored)
        return stored

    async def update(self, session_id: str, record: JSONObject, *, expected_version: int) -> bool:
        # Either way the entry goes: after a failure the caller re-reads from the store, not from
        # here; after a success the next read fetches the new version (writes are rare).
        self._entries.pop(session_id, None)
        return await self.inner.update(session_id, record, expected_version=expected_version)

    async def touch(self, session_id: str) -> bool:
        if self._fresh(session_id) is not None:
            return True  # read from the store within fresh_for: that read slid the expiry
        return await self.inner.touch(session_id)

    async def delete(self, session_id: str) -> bool:
        self._entries.pop(session_id, None)
        return await self.inner.delete(session_id)

    async def count(self) -> int:
        return await self.inner.count()

    async def get(self, session_id: str) -> JSONObject | None:
        stored = await self.load(session_id)
        return None if stored is None else stored.record

    async def put(self, session_id: str, record: JSONObject) -> None:
        self._entries.pop(session_id, None)
        await self.inner.put(session_id, record)
