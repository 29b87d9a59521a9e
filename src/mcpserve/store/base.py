"""The interfaces every state backend implements. They move JSON values, not MCP semantics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from mcpserve.types import JSONObject

__all__ = ["NotificationBus", "SessionStore", "EventStore"]


class NotificationBus(Protocol):
    """Fan-out of server notifications (list changes, resource updates) to every listener.

    Events are JSON-RPC notification bodies: ``{"method": ..., "params": {...}}``. A listener
    sees every event published after its ``subscribe`` context was entered, in order.
    """

    async def publish(self, event: JSONObject) -> None: ...

    def subscribe(self) -> AbstractAsyncContextManager[AsyncIterator[JSONObject]]: ...


class SessionStore(Protocol):
    """2025-era sessions as JSON records with an idle lifetime.

    ``create`` refuses (returns False) when ``max_sessions`` live records exist; ``get`` returns
    None for unknown or expired ids; ``put`` and ``touch`` restart the idle clock.
    """

    async def create(self, session_id: str, record: JSONObject) -> bool: ...

    async def get(self, session_id: str) -> JSONObject | None: ...

    async def put(self, session_id: str, record: JSONObject) -> None: ...

    async def touch(self, session_id: str) -> bool: ...

    async def delete(self, session_id: str) -> bool: ...

    async def count(self) -> int: ...


class EventStore(Protocol):
    """Resumable SSE events of 2025-era sessions.

    Event ids name their stream (``<stream>/<seq>``) so a resumption replays only that stream.
    """

    async def append(self, session_id: str, stream_id: str, message: JSONObject) -> str: ...

    async def replay(
        self, session_id: str, last_event_id: str
    ) -> tuple[str, list[tuple[str, JSONObject]]] | None: ...

    async def forget(self, session_id: str) -> None: ...
