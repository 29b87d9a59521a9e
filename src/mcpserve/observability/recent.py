"""What went wrong lately, kept in memory for the operator console: bounded, never persisted.

Fed by the request observer only for requests that did not succeed, so the usual request pays
nothing. An entry holds identifiers only (request id, principal, method, tool, error code and
id): never arguments, results or headers, which may carry secrets.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["RecentActivity", "RecentError", "LIMITED_WINDOW"]

# A principal counts as "currently limited" while its last refusal is this recent (seconds).
LIMITED_WINDOW: Final = 60.0
_MAX_ERRORS = 100
_MAX_LIMITED = 1000
_MAX_NAME = 200


@dataclass(slots=True, frozen=True)
class RecentError:
    at: float  # wall clock, seconds since the epoch
    request_id: str
    principal: str | None
    method: str
    tool: str | None
    status: int
    outcome: str
    error_code: int | None
    error_id: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "request_id": self.request_id,
            "principal": self.principal,
            "method": self.method,
            "tool": self.tool,
            "status": self.status,
            "outcome": self.outcome,
            "error_code": self.error_code,
            "error_id": self.error_id,
        }


class RecentActivity:
    """A ring of the last errors and the principals refused by a rate limit lately."""

    def __init__(self, clock: Any = time.time) -> None:
        self._clock = clock
        self.errors: deque[RecentError] = deque(maxlen=_MAX_ERRORS)
        # principal (or "anonymous") -> (last refusal, refusals since the entry was made)
        self._limited: dict[str, tuple[float, int]] = {}

    def error(
        self,
        request_id: str,
        principal: str | None,
        method: str,
        tool: str | None,
        status: int,
        outcome: str,
        error_code: int | None = None,
        error_id: str | None = None,
    ) -> None:
        self.errors.append(
            RecentError(
                self._clock(),
                request_id,
                principal[:_MAX_NAME] if principal is not None else None,
                method[:_MAX_NAME],
                tool[:_MAX_NAME] if tool is not None else None,
                status,
                outcome,
                error_code,
                error_id,
            )
        )

    def limited(self, principal: str | None) -> None:
        who = (principal or "anonymous")[:_MAX_NAME]
        now = self._clock()
        if who not in self._limited and len(self._limited) >= _MAX_LIMITED:
            self._forget_before(now - LIMITED_WINDOW)
            if len(self._limited) >= _MAX_LIMITED:  # a flood of distinct callers: keep the newest
                self._limited.pop(next(iter(self._limited)))
        _, count = self._limited.pop(who, (now, 0))
        self._limited[who] = (now, count + 1)  # re-inserted: the dict stays in refusal order

    def _forget_before(self, cutoff: float) -> None:
        for who in [w for w, (last, _) in self._limited.items() if last < cutoff]:
            del self._limited[who]

    def currently_limited(self) -> list[dict[str, Any]]:
        """Principals refused within the last LIMITED_WINDOW seconds, most recent first."""
        self._forget_before(self._clock() - LIMITED_WINDOW)
        return [
            {"principal": who, "last_refused": last, "refusals": count}
            for who, (last, count) in reversed(self._limited.items())
        ]

    def recent_errors(self) -> list[dict[str, Any]]:
        """The kept errors, most recent first."""
        return [entry.as_json() for entry in reversed(self.errors)]
