"""Wait for a condition with a deadline: the tests' one way to wait for background work."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio

__all__ = ["eventually"]


async def eventually(condition: Callable[[], bool | Awaitable[bool]], within: float = 5.0) -> None:
    """Return once ``condition()`` holds; fail after ``within`` seconds."""
    with anyio.fail_after(within):
        while True:
            outcome = condition()
            if not isinstance(outcome, bool):
                outcome = await outcome
            if outcome:
                return
            await anyio.sleep(0.01)  # polling interval, not synchronisation
