"""Which child serves a call: one shared child, or one per principal or per session (a pool with a
cap, whose idle children are stopped)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from mcpserve.gateway.config import UpstreamSpec
from mcpserve.gateway.rpc import UpstreamFailure
from mcpserve.gateway.session import Session
from mcpserve.gateway.supervisor import OnReady, Opener, Supervisor
from mcpserve.observability.logs import get_logger
from mcpserve.server.context import Context

__all__ = ["ChildPool", "isolation_key"]

logger = get_logger("mcpserve.gateway")
SHARED = "shared"


def isolation_key(spec: UpstreamSpec, ctx: Context) -> str:
    """The pool key of a call. 2026-07-28 has no sessions: per-session falls back to the principal."""
    if spec.isolation == "shared":
        return SHARED
    principal = ctx.principal.key if ctx.principal is not None else "anonymous"
    if spec.isolation == "per-session":
        session = (ctx.headers or {}).get("mcp-session-id")
        if ctx.session is not None:
            return f"{principal}#{session or 'stdio'}"
    return principal


class ChildPool:
    def __init__(
        self,
        spec: UpstreamSpec,
        opener: Opener,
        on_ready: OnReady | None,
        on_stop: Callable[[str], None] | None = None,
    ) -> None:
        self.spec = spec
        self._on_stop = on_stop
        self._opener = opener
        self._on_ready = on_ready
        self.children: dict[str, Supervisor] = {}
        self._reaper: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.spec.isolation == "shared":
            self._spawn(SHARED)
        else:
            self._reaper = asyncio.create_task(self._reap_forever())

    def _spawn(self, key: str) -> Supervisor:
        # The shared child is what the catalogue is listed from; pooled children serve calls only
        # (a probe lists them once, and a list_changed from any of them lists again).
        supervisor = Supervisor(self.spec, self._opener, self._on_ready if key == SHARED else None)
        self.children[key] = supervisor
        supervisor.start()
        return supervisor

    def ready(self, key: str) -> Session | None:
        """The child's session for ``key`` when it is up and ready (the common case), else None:
        then :meth:`acquire` starts it or waits for it."""
        supervisor = self.children.get(key)
        if supervisor is None or supervisor.state != "ready" or supervisor.session is None:
            return None
        supervisor.last_used = time.monotonic()
        return supervisor.session

    async def acquire(self, key: str) -> Supervisor:
        supervisor = self.children.get(key)
        if supervisor is None:
            if len(self.children) >= self.spec.max_children and not await self._evict_one():
                raise UpstreamFailure(
                    f"Upstream {self.spec.name!r} has {self.spec.max_children} children busy; try again later"
                )
            supervisor = self._spawn(key)
        supervisor.last_used = time.monotonic()
        return supervisor

    async def _evict_one(self) -> bool:
        """Stop the least recently used child with nothing in flight; False when all are busy."""
        idle = [(s.last_used, k) for k, s in self.children.items() if s.in_flight == 0]
        if not idle:
            return False
        await self._stop(min(idle)[1])
        return True

    async def _stop(self, key: str) -> None:
        supervisor = self.children.pop(key, None)
        if supervisor is not None:
            if self._on_stop is not None:
                self._on_stop(key)
            logger.info("upstream child stopped", upstream=self.spec.name, reason="idle or evicted")
            await supervisor.stop()

    async def reap(self, now: float | None = None) -> int:
        """Stop children unused for ``idle_timeout`` seconds with nothing in flight."""
        now = time.monotonic() if now is None else now
        stale = [
            k
            for k, s in self.children.items()
            if s.in_flight == 0 and now - s.last_used >= self.spec.idle_timeout
        ]
        for key in stale:
            await self._stop(key)
        return len(stale)

    async def _reap_forever(self) -> None:
        interval = min(self.spec.idle_timeout / 2, 10.0)
        while True:
            await asyncio.sleep(interval)  # a periodic sweep, not synchronisation
            await self.reap()

    async def stop(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        children, self.children = self.children, {}
        await asyncio.gather(*(s.stop() for s in children.values()), return_exceptions=True)
