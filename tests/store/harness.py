"""Harnesses that plug each backend into the contract suite."""

from __future__ import annotations

import uuid

import anyio
import redis.asyncio as aioredis

from mcpserve.store.base import EventStore, MessageBus, SessionStore
from mcpserve.store.cached import CachedSessionStore
from mcpserve.store.memory import MemoryEventStore, MemoryMessageBus, MemorySessionStore
from mcpserve.store.redis_bus import RedisMessageBus
from mcpserve.store.redis_connection import STATE_RETRY, connect
from mcpserve.store.redis_store import RedisEventStore, RedisSessionStore
from tests.support.clock import FakeClock

REDIS_URL = "redis://127.0.0.1:6379/0"


class MemoryHarness:
    """One process: every "replica" is the same store and bus; time is a fake clock."""

    idle = 60.0

    def __init__(self) -> None:
        self.clock = FakeClock()
        self._store: MemorySessionStore | None = None
        self._bus = MemoryMessageBus()

    async def sessions(
        self, *, max_sessions: int = 100, max_per_owner: int | None = None, max_events: int = 256
    ) -> SessionStore:
        if self._store is None:
            self._store = MemorySessionStore(
                idle_timeout=self.idle,
                max_sessions=max_sessions,
                max_per_owner=max_per_owner,
                max_events=max_events,
                clock=self.clock,
            )
        return self._store

    def events(self, sessions: SessionStore) -> EventStore:
        assert isinstance(sessions, MemorySessionStore)
        return MemoryEventStore(sessions)

    async def bus(self) -> MessageBus:
        return self._bus

    async def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)


class RedisHarness:
    """Each ``sessions()`` / ``bus()`` is another replica: its own client and pool on the shared
    Redis, under this test's own key prefix (the server is shared: only those keys are removed).
    With ``cache_for``, each replica's sessions sit behind its own read cache."""

    idle = 1.0  # real seconds: Redis keeps its own time

    def __init__(self, url: str = REDIS_URL, *, cache_for: float = 0.0) -> None:
        self.url = url
        self.cache_for = cache_for  # > 0: each replica reads through a CachedSessionStore
        self.prefix = f"test-store-{uuid.uuid4().hex}:"
        self._clients: list[aioredis.Redis] = []
        self._buses: list[RedisMessageBus] = []

    def client(self) -> aioredis.Redis:
        client = connect(self.url, max_connections=16, retry=STATE_RETRY)
        self._clients.append(client)
        return client

    async def sessions(
        self, *, max_sessions: int = 100, max_per_owner: int | None = None, max_events: int = 256
    ) -> SessionStore:
        store = RedisSessionStore(
            self.client(),
            prefix=self.prefix,
            idle_timeout=self.idle,
            max_sessions=max_sessions,
            max_per_owner=max_per_owner,
            max_events=max_events,
        )
        return CachedSessionStore(store, fresh_for=self.cache_for) if self.cache_for else store

    def events(self, sessions: SessionStore) -> EventStore:
        if isinstance(sessions, CachedSessionStore):
            sessions = sessions.inner
        assert isinstance(sessions, RedisSessionStore)
        return RedisEventStore(sessions)

    async def bus(self) -> RedisMessageBus:
        bus = RedisMessageBus(self.client(), prefix=self.prefix, presence_ttl=2.0)
        self._buses.append(bus)
        return bus

    async def advance(self, seconds: float) -> None:
        await anyio.sleep(seconds)  # Redis TTLs run on Redis's clock: this is time passing, not a sync

    async def aclose(self) -> None:
        for bus in self._buses:
            await bus.aclose()
        if self._clients:
            first = self._clients[0]
            keys = [key async for key in first.scan_iter(match=self.prefix + "*")]
            if keys:
                await first.delete(*keys)
        for client in self._clients:
            await client.aclose()
