"""The interfaces every state backend implements. They move JSON values, not MCP semantics.

Two backends implement them: ``memory`` (one replica, nothing survives a restart) and ``redis``
(every replica shares the state). Every Redis operation that cannot reach Redis raises
:class:`~mcpserve.errors.StoreUnavailable`; the memory backends never do.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Collection
from contextlib import AbstractAsyncContextManager
from typing import NamedTuple, Protocol, runtime_checkable

from mcpserve.types import JSONObject

__all__ = [
    "CreateOutcome",
    "StoredSession",
    "SessionStore",
    "EventStore",
    "NotificationBus",
    "MessageBus",
    "AddressInUse",
]


class AddressInUse(Exception):
    """``MessageBus.listen`` on an address another listener (on any replica) already holds."""


class CreateOutcome(enum.Enum):
    """What ``SessionStore.create`` did. Only ``CREATED`` is truthy."""

    CREATED = "created"
    FULL = "full"  # the cluster-wide max_sessions is reached
    OWNER_FULL = "owner_full"  # this owner (principal, else client address) is at its cap

    def __bool__(self) -> bool:
        return self is CreateOutcome.CREATED


class StoredSession(NamedTuple):
    """A session record and its version: ``update`` succeeds only against the version it read."""

    record: JSONObject
    version: int


class SessionStore(Protocol):
    """2025-era sessions as versioned JSON records with a sliding idle lifetime.

    The caps (cluster-wide ``max_sessions`` and the per-owner cap) are given to the backend's
    constructor. Expired sessions disappear by themselves (Redis: key TTL; memory: a sweep on a
    timer) and their events go with them.
    """

    async def create(self, session_id: str, record: JSONObject, *, owner: str | None = None) -> CreateOutcome:
        """Store a new session at version 1 unless a cap refuses it. ``owner`` None: no owner cap."""
        ...

    async def load(self, session_id: str) -> StoredSession | None:
        """The record and its version; None for unknown or expired ids. Restarts the idle clock."""
        ...

    async def update(self, session_id: str, record: JSONObject, *, expected_version: int) -> bool:
        """Compare-and-set: write ``record`` at ``expected_version + 1`` and restart the idle clock.

        False when the version moved (another replica wrote first) or the session is gone; the
        caller re-reads and re-applies its transition.
        """
        ...

    async def touch(self, session_id: str) -> bool:
        """Restart the idle clock without reading; False if the session is gone."""
        ...

    async def delete(self, session_id: str) -> bool: ...

    async def existing(self, session_ids: Collection[str]) -> set[str]:
        """Which of ``session_ids`` are live sessions, without restarting their idle clocks
        (one round trip for all of them: the endpoint checks its open GET streams this way)."""
        ...

    async def count(self) -> int:
        """Live sessions (cluster-wide for Redis)."""
        ...

    # -- transitional: today's endpoint uses these until it moves to load/update -------------------
    async def get(self, session_id: str) -> JSONObject | None:
        """The record alone (``load(...).record``). Transitional; new code uses ``load``."""
        ...

    async def put(self, session_id: str, record: JSONObject) -> None:
        """Unconditional write of an existing session. Transitional; new code uses ``update``."""
        ...


class EventStore(Protocol):
    """Resumable SSE events of 2025-era sessions.

    Event ids are ``<stream>/<seq>``: unique within the session (cluster-wide for Redis) and
    increasing within a stream, so a resumption replays only that stream. Events are bounded per
    session (the oldest go first, whatever their stream) and released with the session: appending
    to a session that does not exist stores nothing (the id is still returned).
    """

    async def append(self, session_id: str, stream_id: str, message: JSONObject) -> str: ...

    async def replay(
        self, session_id: str, last_event_id: str
    ) -> tuple[str, list[tuple[str, JSONObject]]] | None:
        """``(stream_id, events after last_event_id)``; None when the stream is unknown to the
        session (never seen, forgotten, or every event of it is gone)."""
        ...

    async def forget(self, session_id: str) -> None: ...


class NotificationBus(Protocol):
    """Fan-out of server notifications (list changes, resource updates) to every listener.

    Events are JSON-RPC notification bodies: ``{"method": ..., "params": {...}}``. A listener
    sees every event published after its ``subscribe`` context was entered, in order; with Redis,
    on every replica.
    """

    async def publish(self, event: JSONObject) -> None: ...

    def subscribe(self) -> AbstractAsyncContextManager[AsyncIterator[JSONObject]]: ...


@runtime_checkable
class MessageBus(NotificationBus, Protocol):
    """Broadcast (above) plus delivery addressed to one listener, wherever it runs.

    Addresses the endpoint uses: ``session/<sid>`` (a session's GET stream),
    ``answer/<sid>/<request-id>`` (a client's answer to a waiting server→client request),
    ``cancel/<sid>/<request-id>`` (``notifications/cancelled`` for a call running elsewhere).
    """

    async def deliver(self, address: str, message: JSONObject) -> bool:
        """Send ``message`` to the listener of ``address``: True if one is listening right now
        (Redis: a live replica holds it; a dead replica's presence lapses after a short TTL)."""
        ...

    def listen(self, address: str) -> AbstractAsyncContextManager[AsyncIterator[JSONObject]]:
        """Receive what is delivered to ``address`` while the context is open.

        One listener per address, cluster-wide: raises :class:`AddressInUse` on entry if another
        holds it (with Redis, a dead replica's hold lapses after the presence TTL).
        """
        ...

    async def hold(self, address: str) -> bool:
        """Take ``address`` as :meth:`listen` does, without receiving anything there (an
        exclusive claim, e.g. a session's one GET stream): False if it is taken. Held until
        :meth:`release_hold` (with Redis, or until this replica dies and its hold is taken over)."""
        ...

    async def release_hold(self, address: str) -> None: ...
