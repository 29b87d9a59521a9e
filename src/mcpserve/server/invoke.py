"""Call a handler the right way: async on the loop, sync in a worker thread."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import anyio.to_thread

__all__ = ["invoke", "is_async"]


def is_async(fn: Callable[..., Any]) -> bool:
    target = fn.__call__ if not inspect.isroutine(fn) and callable(fn) else fn  # type: ignore[operator]
    return inspect.iscoroutinefunction(target)


async def invoke(fn: Callable[..., Any], asynchronous: bool, kwargs: dict[str, Any]) -> Any:
    if asynchronous:
        return await fn(**kwargs)
    # Sync handlers never block the event loop. abandon_on_cancel lets a cancelled or timed-out
    # request return at once; the thread finishes on its own.
    return await anyio.to_thread.run_sync(functools.partial(fn, **kwargs), abandon_on_cancel=True)
