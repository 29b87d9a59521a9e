"""Call a handler the right way: async on the loop, sync in a worker thread.

Sync handlers never run on the event loop. The pool grows a thread only when every worker is
busy *running* a handler: a burst of short calls is drained by one worker under one hold of the
GIL, instead of waking dozens of threads that then queue for it (a convoy that costs more CPU
than the handlers themselves). A handler that blocks still gets its neighbours new threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import inspect
import threading
from collections.abc import Callable
from queue import SimpleQueue
from typing import Any

__all__ = ["HandlerPool", "in_worker", "invoke", "is_async"]

_Item = tuple[asyncio.AbstractEventLoop, asyncio.Future[Any], Callable[[], Any]]


def _resolve(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.cancelled():
        return  # the request went away; the handler's outcome has no one to go to
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


class HandlerPool:
    def __init__(self, max_workers: int = 40) -> None:
        self._queue: SimpleQueue[_Item] = SimpleQueue()
        self._max = max_workers
        self._workers = 0
        self._idle = 0
        self._lock = threading.Lock()

    def submit(self, fn: Callable[[], Any]) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.put((loop, future, fn))
        if self._idle == 0 and self._workers < self._max:
            with self._lock:
                if self._idle == 0 and self._workers < self._max:
                    self._workers += 1
                    name = f"mcpserve-handler-{self._workers}"
                    threading.Thread(target=self._work, name=name, daemon=True).start()
        return future

    def _work(self) -> None:
        with self._lock:
            self._idle += 1
        while True:
            loop, future, fn = self._queue.get()
            with self._lock:
                self._idle -= 1
            try:
                outcome = (True, fn())
            except BaseException as exc:  # delivered to the awaiting request, raised there
                outcome = (False, exc)
            # Idle again before the result wakes the loop: posting it may hand the loop the GIL
            # (the selector loop's self-pipe write releases it), and a call submitted then must
            # not start a thread while this one is about to take it.
            with self._lock:
                self._idle += 1
            with contextlib.suppress(RuntimeError):  # the loop closed while the handler ran
                loop.call_soon_threadsafe(_resolve, future, *outcome)


_POOL = HandlerPool()


def is_async(fn: Callable[..., Any]) -> bool:
    target = fn.__call__ if not inspect.isroutine(fn) and callable(fn) else fn  # type: ignore[operator]
    return inspect.iscoroutinefunction(target)


def in_worker(fn: Callable[..., Any], kwargs: dict[str, Any]) -> asyncio.Future[Any]:
    """Run a sync handler in a worker thread, in a copy of the caller's context; await the result.

    Cancelling the await abandons the thread, which finishes on its own.
    """
    return _POOL.submit(functools.partial(contextvars.copy_context().run, fn, **kwargs))


async def invoke(fn: Callable[..., Any], asynchronous: bool, kwargs: dict[str, Any]) -> Any:
    if asynchronous:
        return await fn(**kwargs)
    return await in_worker(fn, kwargs)
