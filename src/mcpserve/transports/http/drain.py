"""Graceful drain: count MCP requests in flight and let shutdown wait until none are left.

Draining starts at the first SIGTERM/SIGINT (see :mod:`mcpserve.transports.http.serve`) in two
steps. ``stopping``: readiness answers 503 at once while requests are still served normally
(the pre-stop delay, ``MCPSERVE_DRAIN_DELAY``, lets load balancers notice). ``draining``: the
listener is closed, the endpoint refuses only what cannot be handed over (see
``McpEndpoint.draining``), long-lived streams end, and requests already running get until the
drain deadline.
"""

from __future__ import annotations

import asyncio

import anyio

__all__ = ["Drain"]


class Drain:
    """In-flight accounting for one HTTP app."""

    __slots__ = ("_idle", "draining", "in_flight", "stopping")

    def __init__(self) -> None:
        self.stopping = False  # readiness fails
        self.draining = False  # and the endpoint refuses what another replica must take
        self.in_flight = 0
        self._idle: asyncio.Event | None = None

    def enter(self) -> None:
        self.in_flight += 1

    def leave(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0 and self._idle is not None:
            self._idle.set()

    async def wait_idle(self, seconds: float) -> bool:
        """Wait until no request is in flight; False if ``seconds`` passed first.

        Requests still arrive while draining (on keep-alive connections, each answered with
        ``Connection: close``): one can start after the count reached zero and before this
        wakes, so the count is checked again rather than the wake-up taken as idle.
        """
        with anyio.move_on_after(seconds):
            while self.in_flight:
                self._idle = asyncio.Event()
                await self._idle.wait()
        return self.in_flight == 0
