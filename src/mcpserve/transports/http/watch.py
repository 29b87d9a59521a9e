"""Ends open GET streams whose session is gone (on a timer) or whose server is closing.

A standalone GET stream only hears notifications: left alone, it would outlive its session (an
expiry, or a DELETE on another replica) for as long as the client holds it. Every ``interval``
seconds one task asks the session store which of the sessions with a stream open here still
exist (one round trip for all of them, without restarting their idle clocks) and ends the
streams of the others, so a stream ends within ``interval`` of its session. One more task per
replica ends every stream at once when the server starts closing. Streams need no task of their
own for either.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

import anyio
import anyio.lowlevel

from mcpserve.errors import StoreUnavailable
from mcpserve.store.base import SessionStore
from mcpserve.store.sweeping import Sweeping

logger = logging.getLogger("mcpserve.http")

__all__ = ["StreamWatch", "Stoppable"]


class Stoppable(Protocol):
    def cancel(self) -> object: ...


class StreamWatch:
    __slots__ = ("_closer", "_closing", "_sessions", "_sweeper", "_watched")

    def __init__(self, sessions: SessionStore, interval: float, closing: anyio.Event) -> None:
        self._sessions = sessions
        self._closing = closing
        self._closer: asyncio.Task[None] | None = None
        self._watched: dict[str, Stoppable] = {}
        self._sweeper = Sweeping(self.check, lambda: bool(self._watched), interval)

    @property
    def watched(self) -> int:
        """Open GET streams watched now."""
        return len(self._watched)

    def watch(self, session_id: str, stream: Stoppable) -> None:
        """Cancel ``stream`` once the session is found gone (one GET stream per session)."""
        self._watched[session_id] = stream
        self._sweeper.ensure()
        closer, loop = self._closer, asyncio.get_running_loop()
        if closer is None or closer.done() or closer.get_loop() is not loop:
            self._closer = loop.create_task(self._close_all())

    async def _close_all(self) -> None:
        """Wait for the server to start closing, then end every stream (and each opened later)."""
        await self._closing.wait()
        while self._watched:
            self._watched.popitem()[1].cancel()
            await anyio.lowlevel.checkpoint()

    def unwatch(self, session_id: str, stream: Stoppable) -> None:
        if self._watched.get(session_id) is stream:
            del self._watched[session_id]

    async def check(self) -> None:
        watched = list(self._watched)
        try:
            live = await self._sessions.existing(watched)
        except StoreUnavailable:  # the store decides at the next check; the streams stay meanwhile
            logger.warning("could not check the sessions of open GET streams: session store unavailable")
            return
        for session_id in watched:
            if session_id not in live:
                stream = self._watched.pop(session_id, None)
                if stream is not None:
                    stream.cancel()
