"""What a client may hold of a server before its request is read, and one warning per offender.

Enforced per connection by :mod:`mcpserve.transports.http.protocol`: the bytes of a request head
(431 past the limit), the time to send the head and the body (408 past the deadline), and how
many connections are open at once (503 to the connection past the cap). Idle keep-alive
connections are closed by uvicorn's own keep-alive timer.

A hostile client trips a limit over and over (500 slow connections, a flood of new ones): each
would be a warning, and the log a second way to exhaust the server. :class:`OffenderLog` writes
one line per kind of offence and client address per window and counts the rest into the next.
"""

from __future__ import annotations

import resource
from dataclasses import dataclass, field

from mcpserve.observability.logs import get_logger

__all__ = ["ConnectionLimits", "OffenderLog", "default_max_connections"]

logger = get_logger("mcpserve.http")

# Descriptors kept free of client connections: listeners, log files, database and Redis pools.
_RESERVED_SHARE = 8


def default_max_connections() -> int:
    """7/8 of this process's open-file limit: the cap trips before ``accept`` fails with EMFILE."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:  # pragma: no cover - Linux always reports a number
        return 65_536
    return max(1, soft - soft // _RESERVED_SHARE)


class OffenderLog:
    """At most one warning per (offence, client address) per ``window`` seconds; bounded memory."""

    __slots__ = ("_seen", "max_entries", "window")

    def __init__(self, window: float = 60.0, max_entries: int = 1024) -> None:
        self.window = window
        self.max_entries = max_entries
        # (offence, address) -> [time of the last line written, offences since that line]
        self._seen: dict[tuple[str, str], list[float]] = {}

    def report(self, offence: str, address: str, now: float, message: str) -> bool:
        """Log ``message`` unless this offender was logged within the window; True if logged."""
        key = (offence, address)
        entry = self._seen.get(key)
        if entry is not None and now - entry[0] < self.window:
            entry[1] += 1
            return False
        if entry is None and len(self._seen) >= self.max_entries:
            self._seen.clear()  # a flood of distinct addresses costs a repeat line, never memory
        repeats = int(entry[1]) if entry is not None else 0
        suffix = f" ({repeats} more from this address since the last such line)" if repeats else ""
        logger.warning(message + suffix, client=address, offence=offence)
        self._seen[key] = [now, 0]
        return True


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """The per-connection limits one HTTP listener enforces (see ``docs/configuration.md``)."""

    max_header_bytes: int = 64 * 1024
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_connections: int = field(default_factory=default_max_connections)
    offenders: OffenderLog = field(default_factory=OffenderLog, compare=False)

    @property
    def watch_interval(self) -> float:
        """The longest a connection's watchdog sleeps: a phase starting later cannot be missed."""
        return min(self.header_timeout, self.body_timeout)
