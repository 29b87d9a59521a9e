"""Harnesses that plug each backend into the contract suite."""

from __future__ import annotations

from mcpserve.store.base import EventStore, MessageBus, SessionStore
from mcpserve.store.memory import MemoryEventStore, MemoryMessageBus, MemorySessionStore
from tests.support.clock import FakeClock


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
