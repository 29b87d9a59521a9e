"""Keep one upstream session alive: restart after a crash with exponential backoff, give up on a
crash loop, and say at every moment what state it is in (for ``/ready`` and metrics)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Literal

from mcpserve.gateway.config import UpstreamSpec
from mcpserve.gateway.rpc import UpstreamFailure
from mcpserve.gateway.session import Session
from mcpserve.observability.logs import get_logger

__all__ = ["Supervisor", "State", "Opener"]

logger = get_logger("mcpserve.gateway")
State = Literal["starting", "ready", "restarting", "failed", "stopped"]
# Opens a session; the callback runs when that session's transport ends (a child's exit code).
Opener = Callable[[Callable[[int], None]], Awaitable[Session]]
OnReady = Callable[[Session, bool], Awaitable[None]]


class Supervisor:
    def __init__(self, spec: UpstreamSpec, opener: Opener, on_ready: OnReady | None = None) -> None:
        self.spec = spec
        self.state: State = "starting"
        self.reason: str | None = None
        self.session: Session | None = None
        self.restarts = 0
        self.last_used = time.monotonic()
        self._opener = opener
        self._on_ready = on_ready
        self._crashes: collections.deque[float] = collections.deque()
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._attempt = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._open(restarted=False))

    def _transition(self, state: State, reason: str | None = None) -> None:
        self.state, self.reason = state, reason
        self._changed.set()
        self._changed = asyncio.Event()

    async def _open(self, *, restarted: bool) -> None:
        self._attempt += 1
        attempt = self._attempt

        def exited(code: int) -> None:
            if attempt == self._attempt and self.state == "ready":
                self.session = None
                self._crashed(f"exited with code {code}")

        try:
            session = await self._opener(exited)
        except (UpstreamFailure, OSError, TimeoutError, Exception) as exc:
            self._crashed(_describe(exc))
            return
        if self.state == "stopped":
            await session.close()
            return
        self.session = session
        self._transition("ready")
        logger.info("upstream ready", upstream=self.spec.name, pid=session.pid, restarted=restarted)
        if self._on_ready is not None:
            try:
                await self._on_ready(session, restarted)
            except Exception as exc:
                logger.warning("upstream listing failed", upstream=self.spec.name, reason=_describe(exc))

    def _crashed(self, reason: str) -> None:
        if self.state == "stopped":
            return
        now = time.monotonic()
        self._crashes.append(now)
        while self._crashes and self._crashes[0] < now - self.spec.crash_loop_window:
            self._crashes.popleft()
        count = len(self._crashes)
        if count >= self.spec.crash_loop_limit:
            reason = f"crash loop: {count} failures within {self.spec.crash_loop_window:g} s; last: {reason}"
            logger.error("upstream failed", upstream=self.spec.name, reason=reason)
            self._transition("failed", reason)
            return
        delay = min(self.spec.restart_backoff_max, self.spec.restart_backoff * 2 ** (count - 1))
        logger.warning("upstream restarting", upstream=self.spec.name, reason=reason, delay=delay)
        self._transition("restarting", reason)
        self.restarts += 1
        self._task = asyncio.create_task(self._restart_after(delay))

    async def _restart_after(self, delay: float) -> None:
        await asyncio.sleep(delay)  # the backoff itself, not synchronisation
        await self._open(restarted=True)

    def _retry_if_rested(self, now: float) -> None:
        """A failed upstream gets one new attempt on demand once a crash-loop window has passed
        without crashes (a remote server that was down, a fixed binary): failed is not forever."""
        if self.state == "failed" and (
            not self._crashes or now - self._crashes[-1] > self.spec.crash_loop_window
        ):
            self._crashes.clear()
            logger.info("upstream retried after failing", upstream=self.spec.name)
            self._transition("starting")
            self._task = asyncio.create_task(self._open(restarted=True))

    async def ready_session(self) -> Session:
        """The live session, waiting for a start or restart under way (bounded by start_timeout)."""
        self.last_used = time.monotonic()
        if self.state == "ready" and self.session is not None:
            return self.session  # the common case: no deadline to set up
        self._retry_if_rested(self.last_used)
        try:
            async with asyncio.timeout(self.spec.start_timeout):
                while self.state in ("starting", "restarting"):
                    await self._changed.wait()
        except TimeoutError:
            raise UpstreamFailure(f"Upstream {self.spec.name!r} did not become ready in time") from None
        if self.state == "ready" and self.session is not None:
            return self.session
        raise UpstreamFailure(f"Upstream {self.spec.name!r} is unavailable ({self.state}: {self.reason})")

    @property
    def in_flight(self) -> int:
        return self.session.in_flight if self.session is not None else 0

    async def stop(self) -> None:
        self._transition("stopped", "stopped")
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        session, self.session = self.session, None
        if session is not None:
            await session.close()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "did not answer initialize in time"
    text = str(exc)
    return (f"{type(exc).__name__}: {text}" if text else type(exc).__name__)[:200]
