"""A per-replica read cache in front of a shared session store: most 2025-era requests read their
session without a round trip to Redis.

Correctness rests on three rules:

- Writes go through to the store with compare-and-set, so a stale cached version can never
  overwrite a newer record: the write fails, the caller re-reads (past the cache) and re-applies.
- Every write and delete through any replica's cache broadcasts the session id on an
  invalidation bus of its own; every replica drops that entry when it hears it. A load that was
  under way while an invalidation arrived is not cached (it may have read the old record).
- Pub/sub delivers at most once (a replica cut off from Redis misses what was sent meanwhile),
  so an entry is also never older than ``max_age``: that bounds how long another replica's
  change can go unseen here. Reloading after ``max_age`` also restarts the session's idle clock
  in the store, so a session in use stays alive.

The cache holds what ``load`` returns and nothing else; ``count``, ``create`` and ``touch`` pass
through.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from contextlib import suppress

import anyio

from mcpserve.errors import StoreUnavailable
from mcpserve.store.base import CreateOutcome, NotificationBus, SessionStore, StoredSession
from mcpserve.types import JSONObject

__all__ = ["CachedSessionStore"]

logger = logging.getLogger("mcpserve.store")


class CachedSessionStore:
    """``store`` with a read cache of at most ``max_entries`` sessions, each at most ``max_age``
    seconds old, invalidated through ``invalidations`` (shared by every replica)."""

    def __init__(
        self,
        store: SessionStore,
        invalidations: NotificationBus,
        *,
        max_age: float = 2.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._bus = invalidations
        self._max_age = max_age
        self._max_entries = max_entries
        self._clock = clock
        self._entries: dict[str, tuple[float, StoredSession]] = {}
        self._generation = 0  # bumped by every invalidation heard
        self._listening = False  # nothing is cached unless invalidations are heard
        self._listener: asyncio.Task[None] | None = None

    # -- invalidation ---------------------------------------------------------------------------------
    def _ensure_listener(self) -> None:
        task = self._listener
        if task is None or task.done():
            self._listener = asyncio.get_running_loop().create_task(self._listen())

    async def _listen(self) -> None:
        while True:
            try:
                async with self._bus.subscribe() as events:
                    self._listening = True
                    async for event in events:
                        self._forget(event.get("session"))
            except Exception as exc:  # the bus is unreachable: retried below, entries age out
                logger.warning("session cache invalidations unavailable: %s", type(exc).__name__)
            finally:
                self._listening = False
                self._entries.clear()  # what was missed meanwhile is unknown
            await anyio.sleep(0.5)  # back off while the bus is unreachable

    def _forget(self, session_id: object) -> None:
        self._generation += 1
        if isinstance(session_id, str):
            self._entries.pop(session_id, None)

    async def _announce(self, session_id: str) -> None:
        self._forget(session_id)
        with suppress(StoreUnavailable):  # the others' entries then age out within max_age
            await self._bus.publish({"session": session_id})

    async def aclose(self) -> None:
        task, self._listener = self._listener, None
        if task is not None:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task

    # -- SessionStore -----------------------------------------------------------------------------------
    async def load(self, session_id: str) -> StoredSession | None:
        now = self._clock()
        cached = self._entries.get(session_id)
        if cached is not None and now - cached[0] < self._max_age:
            return cached[1]
        self._ensure_listener()
        generation = self._generation
        stored = await self._store.load(session_id)
        if stored is None:
            self._entries.pop(session_id, None)
        elif self._listening and generation == self._generation:
            self._put(session_id, now, stored)
        return stored

    def _put(self, session_id: str, now: float, stored: StoredSession) -> None:
        entries = self._entries
        entries.pop(session_id, None)
        if len(entries) >= self._max_entries:
            del entries[next(iter(entries))]  # the oldest
        entries[session_id] = (now, stored)

    async def update(self, session_id: str, record: JSONObject, *, expected_version: int) -> bool:
        written = await self._store.update(session_id, record, expected_version=expected_version)
        await self._announce(session_id)
        return written

    async def delete(self, session_id: str) -> bool:
        deleted = await self._store.delete(session_id)
        await self._announce(session_id)
        return deleted

    async def create(self, session_id: str, record: JSONObject, *, owner: str | None = None) -> CreateOutcome:
        return await self._store.create(session_id, record, owner=owner)

    async def touch(self, session_id: str) -> bool:
        return await self._store.touch(session_id)

    async def count(self) -> int:
        return await self._store.count()

    async def get(self, session_id: str) -> JSONObject | None:
        stored = await self.load(session_id)
        return None if stored is None else stored.record

    async def put(self, session_id: str, record: JSONObject) -> None:
        await self._store.put(session_id, record)
        await self._announce(session_id)
