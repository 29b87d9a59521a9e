"""The one way mcpserve connects to Redis: redis-py asyncio over hiredis, on a bounded pool.

``redis://``, ``rediss://`` (TLS) and ``unix://`` URLs, as redis-py reads them. The pool is a
``BlockingConnectionPool``: under load a caller waits (up to ``timeout``) for a free connection
instead of opening ever more, so a replica's connections to Redis are capped at
``max_connections``. The hiredis parser is picked by redis-py when the package is installed (it
is a dependency of mcpserve); replies are parsed in C.

State backends call Redis inside ``with unavailable:``, which turns every way Redis can fail to
answer into :class:`~mcpserve.errors.StoreUnavailable` (a 503 with ``Retry-After``); the cause is
logged once per outage, never sent.
"""

from __future__ import annotations

import logging
from typing import Final, Literal

import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from mcpserve.errors import StoreUnavailable

__all__ = ["connect", "unavailable", "STATE_RETRY", "OUTAGE_ERRORS"]

logger = logging.getLogger("mcpserve.store")

# Redis did not answer, or cannot take writes right now (loading, a replica after a failover).
OUTAGE_ERRORS: Final = (
    redis.exceptions.ConnectionError,  # refused, reset, pool exhausted, LOADING (BusyLoadingError)
    redis.exceptions.TimeoutError,
    redis.exceptions.ReadOnlyError,
    redis.exceptions.TryAgainError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.MasterDownError,
    redis.exceptions.OutOfMemoryError,  # maxmemory reached with noeviction: no room for state now
    OSError,
)

# State operations retry a lost connection once, shortly: enough for a pooled connection that
# Redis closed (a restart, an idle timeout), short enough that an outage answers 503 at once. A
# timeout is not retried: a hung Redis costs a request one socket timeout, not several.
STATE_RETRY: Final = Retry(
    ExponentialBackoff(cap=0.05, base=0.01), retries=1, supported_errors=(redis.exceptions.ConnectionError,)
)


def connect(
    url: str, *, max_connections: int = 64, timeout: float = 2.0, retry: Retry | None = None
) -> aioredis.Redis:
    """A client on a bounded pool that waits for a free connection instead of failing under load.

    ``retry`` None keeps redis-py's default retry policy.
    """
    options: dict[str, object] = {}
    if retry is not None:
        options["retry"] = retry
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=timeout,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        socket_keepalive=True,  # a peer that vanished without closing is found by the kernel
        **options,
    )
    return aioredis.Redis.from_pool(pool)  # the client owns the pool: aclose() closes both


class _Unavailable:
    """``with unavailable:`` around Redis calls: an outage error becomes StoreUnavailable.

    A class rather than a generator context manager: it wraps every state operation. The first
    failure of an outage and the recovery are logged, not every failed operation.
    """

    down = False

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> Literal[False]:
        if kind is None:
            if self.down:
                type(self).down = False
                logger.info("redis reachable again")
            return False
        if issubclass(kind, OUTAGE_ERRORS):
            if not self.down:
                type(self).down = True
                logger.warning("redis unreachable: %s", kind.__name__)
            raise StoreUnavailable() from exc
        return False


unavailable: Final = _Unavailable()
