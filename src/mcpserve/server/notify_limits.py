"""Per-request limits on the notifications a handler sends while it runs (progress, log messages).

A tool that reports progress or logs inside a tight loop would otherwise send thousands of
messages: each is a write to the client (an SSE event, a stdio line) and, in the 2025 era over
HTTP, an entry in the session's event store. Each kind takes tokens from its own bucket per
request: a burst at once, then a steady rate. A progress notification that completes a known
total always goes out; the client is told how many log messages it missed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

__all__ = ["NotificationLimits", "NotificationBudget", "DEFAULT_LIMITS"]


@dataclass(frozen=True, slots=True)
class NotificationLimits:
    """``MCPSERVE_PROGRESS_NOTIFICATIONS_PER_SECOND``, ``..._LOG_...`` and ``..._NOTIFICATION_BURST``."""

    progress_per_second: float = 10.0
    log_per_second: float = 10.0
    burst: int = 20
    clock: Callable[[], float] = time.monotonic


DEFAULT_LIMITS: Final = NotificationLimits()


class _Bucket:
    __slots__ = ("_clock", "_rate", "_refilled", "_size", "_tokens", "dropped")

    def __init__(self, rate: float, size: int, clock: Callable[[], float]) -> None:
        self._rate = rate
        self._size = size
        self._clock = clock
        self._tokens = float(size)
        self._refilled = clock()
        self.dropped = 0

    def take(self, always: bool = False) -> bool:
        """A token if there is one; ``always``: go ahead without one (nothing counted as dropped)."""
        now = self._clock()
        self._tokens = min(self._size, self._tokens + (now - self._refilled) * self._rate)
        self._refilled = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        if always:
            return True
        self.dropped += 1
        return False


class NotificationBudget:
    """What one request may still send; made on its first notification."""

    __slots__ = ("logs", "progress")

    def __init__(self, limits: NotificationLimits) -> None:
        self.progress = _Bucket(limits.progress_per_second, limits.burst, limits.clock)
        self.logs = _Bucket(limits.log_per_second, limits.burst, limits.clock)

    def allow_progress(self, final: bool) -> bool:
        """Whether a progress notification may go now (``final``: it completes the total)."""
        return self.progress.take(always=final)

    def allow_log(self) -> bool:
        """Whether a log notification may go now; a refusal is counted in ``logs.dropped``."""
        return self.logs.take()
