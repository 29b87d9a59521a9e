"""Ends open GET streams whose session is gone, on a timer.

A standalone GET stream only hears notifications: left alone, it would outlive its session (an
expiry, or a DELETE on another replica) for as long as the client holds it. Every ``interval``
seconds one task asks the session store which of the sessions with a stream open here still
exist (one round trip for all of them, without restarting their idle clocks) and ends the
streams of the others, so a stream ends within ``interval`` of its session.
"""

from __future__ import annotations

import logging

import anyio

from mcpserve.errors import StoreUnavailable
from mcpserve.store.base import SessionStore
from mcpserve.store.sweeping import Sweeping

logger = logging.getLogger("mcpserve.http")

__all__ = ["StreamWatch"]


class StreamWatch:
    __slots__ = ("_sessions", "_sweeper", "_watched")

    def __init__(self, sessions: SessionStore, interval: float) -> None:
        self._sessions = sessions
        self._watched: dict[str, anyio.CancelScope] = {}
        self._sweeper = Sweeping(self.check, lambda: bool(self._watched), interval)

    @property
    def watched(self) -> int:
        """Open GET streams watched now."""
        return len(self._watched)

    def watch(self, session_id: str, scope: anyio.CancelScope) -> None:
        """Cancel ``scope`` once the session is found gone (one GET stream per session)."""
        self._watched[session_id] = scope
        self._sweeper.ensure()

    def unwatch(self, session_id: str) -> None:
        self._watched.pop(session_id, None)

    async def check(self) -> None:
        watched = list(self._watched)
        try:
            live = await self._sessions.existing(watched)
        except StoreUnavailable:  # the store decides at the next check; the streams stay meanwhile
            logger.warning("could not check the sessions of open GET streams: session store unavailable")
            return
        for session_id in watched:
            if session_id not in live:
                scope = self._watched.pop(session_id, None)
                if scope is not None:
                    scope.cancel()
