"""Call a handler the right way: async on the loop, sync in a worker thread."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

__all__ = ["invoke", "is_async"]

# One pool for handler code. Sized like anyio's default limiter; a handler that blocks holds one
# thread, never the event loop.
_POOL = ThreadPoolExecutor(max_workers=40, thread_name_prefix="mcpserve-handler")


def is_async(fn: Callable[..., Any]) -> bool:
    target = fn.__call__ if not inspect.isroutine(fn) and callable(fn) else fn  # type: ignore[operator]
    return inspect.iscoroutinefunction(target)


async def invoke(fn: Callable[..., Any], asynchronous: bool, kwargs: dict[str, Any]) -> Any:
    if asynchronous:
        return await fn(**kwargs)
    # run_in_executor is the cheapest thread handoff asyncio offers (anyio.to_thread costs about
    # twice as much per call). Cancelling the await abandons the thread, which finishes on its own.
    context = contextvars.copy_context()
    call = functools.partial(context.run, fn, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_POOL, call)
