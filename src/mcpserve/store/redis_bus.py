"""The message bus over Redis pub/sub: broadcast to every replica, and delivery to one listener.

Each replica holds one pub/sub connection for everything it listens to, read by one task that
hands messages to in-process queues, so a thousand open streams cost one Redis connection.

Addressed delivery needs to know whether anyone listens, so a waiting request on a replica that
died is answered with an error instead of a silent 202. A listener holds a presence key
``P{<address>}:l`` (its replica's token, a short TTL renewed by a heartbeat) and is subscribed
to ``P{<address>}:m``. ``deliver`` runs one script: no presence key, or a publish that reached
no subscriber (the holder's connection is gone: its replica was killed), is False. Each
replica is also subscribed to its own liveness channel ``{bus}:replica:<token>``: a presence key
left by a dead replica is taken over at once by the next listener when a probe publish there
reaches nobody, and otherwise lapses after ``presence_ttl``. An address can also be merely held
(:meth:`RedisMessageBus.hold`, a session's one GET stream): the presence key alone, no
subscription of its own, so an open stream costs the replica no pub/sub channel.

Pub/sub delivers at most once: a message published while a replica is disconnected from Redis
is lost for it. Broadcast events are idempotent hints (list changes); addressed messages report
whether they were delivered.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any, Final

import anyio
import orjson
import redis.asyncio as aioredis
from anyio.streams.memory import MemoryObjectSendStream
from redis.asyncio.client import PubSub

from mcpserve.errors import StoreUnavailable
from mcpserve.store.base import AddressInUse
from mcpserve.store.fanout import Fanout
from mcpserve.store.redis_connection import OUTAGE_ERRORS, unavailable
from mcpserve.store.redis_store import check_prefix
from mcpserve.types import JSONObject

__all__ = ["RedisMessageBus"]

logger = logging.getLogger("mcpserve.store")

# KEYS: presence. ARGV: channel, message. Returns receivers (0: nobody listens).
_DELIVER: Final = """
if redis.call('exists', KEYS[1]) == 0 then return 0 end
return redis.call('publish', ARGV[1], ARGV[2])
"""

# KEYS: presence. ARGV: token, ttl ms. Renews our hold (or takes it back after Redis lost it);
# returns 0 when another listener holds the address now.
_RENEW: Final = """
local holder = redis.call('get', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

# KEYS: presence. ARGV: token, ttl ms, the liveness channel of a replica less its token.
# A taken address is probed through its holder's replica (the presence names it): one
# subscription per replica, and an address merely held needs none of its own. Returns 1 if the
# address is now ours.
_CLAIM: Final = """
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
local holder = redis.call('get', KEYS[1])
if holder == ARGV[1] then return 0 end
if holder and redis.call('publish', ARGV[3] .. holder, '') > 0 then return 0 end
redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

_RENEW_BATCH: Final = 1000

# KEYS: presence. ARGV: token.
_RELEASE: Final = """
if redis.call('get', KEYS[1]) == ARGV[1] then redis.call('del', KEYS[1]) end
"""


class RedisMessageBus:
    """Broadcast and addressed delivery across replicas. :meth:`aclose` at shutdown."""

    def __init__(
        self, client: aioredis.Redis, *, prefix: str, presence_ttl: float = 5.0, buffer: int = 256
    ) -> None:
        self.client = client
        self.prefix = check_prefix(prefix)
        self._fanout = Fanout(buffer)
        self._ttl_ms = max(100, round(presence_ttl * 1000))
        self._token = secrets.token_hex(8)  # this replica's bus
        self._broadcast = f"{prefix}{{bus}}:broadcast"
        self._broadcast_key = self._broadcast.encode()
        self._addressed: dict[bytes, MemoryObjectSendStream[JSONObject]] = {}
        self._presence: dict[bytes, str] = {}  # channel -> presence key, for the heartbeat
        self._held: set[str] = set()  # presence keys of addresses held without listening
        self._replicas = f"{prefix}{{bus}}:replica:"  # + token: a replica's liveness channel
        self._alive = False  # subscribed to our own liveness channel
        self._alive_lock = anyio.Lock()
        self._pubsub: PubSub | None = None
        self._reader: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        # One event per SUBSCRIBE sent, oldest first: Redis confirms them in order.
        self._confirmed: dict[bytes, deque[anyio.Event]] = {}
        self._lock = anyio.Lock()
        register = client.register_script
        self._deliver, self._claim = register(_DELIVER), register(_CLAIM)
        self._renew, self._release = register(_RENEW), register(_RELEASE)

    def _keys(self, address: str) -> tuple[str, str]:
        base = f"{self.prefix}{{{address}}}"
        return base + ":l", base + ":m"

    # -- the one pub/sub connection ------------------------------------------------------------------
    async def _join(self, channel: str) -> None:
        """Subscribe and wait until Redis confirms, so nothing published afterwards is missed."""
        async with self._lock:
            if self._pubsub is None:
                self._pubsub = self.client.pubsub()
            confirmed = anyio.Event()
            waiting = self._confirmed.setdefault(channel.encode(), deque())
            waiting.append(confirmed)
            try:
                with unavailable:
                    await self._pubsub.subscribe(channel)
            except StoreUnavailable:
                waiting.remove(confirmed)
                if not waiting:
                    self._confirmed.pop(channel.encode(), None)
                raise
            loop = asyncio.get_running_loop()
            if self._reader is None or self._reader.done():
                self._reader = loop.create_task(self._read())
        with anyio.move_on_after(5):
            await confirmed.wait()
        if not confirmed.is_set():  # the pub/sub connection is down: the reader is reconnecting
            raise StoreUnavailable()

    async def _leave(self, channel: str) -> None:
        if self._pubsub is not None:
            with suppress(*OUTAGE_ERRORS):  # the subscription ends with the connection anyway
                await self._pubsub.unsubscribe(channel)

    async def _read(self) -> None:
        pubsub = self._pubsub
        assert pubsub is not None
        while True:
            try:
                message = await pubsub.get_message(timeout=1.0)
            except OUTAGE_ERRORS as exc:
                # redis-py reconnects on the next read and subscribes again to every channel.
                logger.warning("redis pub/sub connection lost: %s", type(exc).__name__)
                await anyio.sleep(0.2)
                continue
            if message is not None:
                self._dispatch(message)

    def _dispatch(self, message: dict[str, Any]) -> None:
        channel: bytes = message["channel"]
        if message["type"] == "subscribe":
            waiting = self._confirmed.get(channel)
            if waiting:  # none after a reconnect: redis-py subscribed again by itself
                waiting.popleft().set()
                if not waiting:  # kept only while a subscription waits: channels come and go
                    del self._confirmed[channel]
            return
        if message["type"] != "message" or not message["data"]:
            return  # unsubscribe confirmations; the empty probe of a claim
        event = orjson.loads(message["data"])
        if channel == self._broadcast_key:
            self._fanout.send(event)
        else:
            target = self._addressed.get(channel)
            if target is not None:
                self._fanout.offer(target, event)

    async def _beat(self) -> None:
        """Renew every presence this replica holds, three times per TTL, in pipelined batches."""
        while self._presence or self._held:
            await anyio.sleep(self._ttl_ms / 3000)
            held = (*self._presence.items(), *((None, key) for key in self._held))
            for start in range(0, len(held), _RENEW_BATCH):
                batch = held[start : start + _RENEW_BATCH]
                try:
                    async with self.client.pipeline(transaction=False) as pipe:
                        for _, key in batch:
                            await self._renew(keys=[key], args=[self._token, self._ttl_ms], client=pipe)
                        kept = await pipe.execute()
                except OUTAGE_ERRORS:
                    break  # renewed on the next beat; listeners see the outage on their own calls
                for (channel, key), still_ours in zip(batch, kept, strict=True):
                    if not still_ours:
                        self._lose(channel, key)

    def _lose(self, channel: bytes | None, key: str) -> None:
        logger.warning("a bus address was taken over by another listener")
        if channel is None:
            self._held.discard(key)
            return
        stream = self._addressed.pop(channel, None)
        if stream is not None:
            stream.close()

    # -- NotificationBus ----------------------------------------------------------------------------
    async def publish(self, event: JSONObject) -> None:
        with unavailable:
            await self.client.publish(self._broadcast, orjson.dumps(event))

    @property
    def dropped(self) -> int:
        return self._fanout.dropped

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[AsyncIterator[JSONObject]]:
        if not self._fanout.listeners:
            await self._join(self._broadcast)
        async with self._fanout.receiver() as events:
            yield events

    # -- addressed delivery -------------------------------------------------------------------------
    async def deliver(self, address: str, message: JSONObject) -> bool:
        presence, channel = self._keys(address)
        with unavailable:
            received = await self._deliver(keys=[presence], args=[channel, orjson.dumps(message)])
        return int(received) > 0

    @asynccontextmanager
    async def listen(self, address: str) -> AsyncIterator[AsyncIterator[JSONObject]]:
        presence, channel = self._keys(address)
        await self._ensure_alive()
        with unavailable:
            claimed = await self._claim(keys=[presence], args=[self._token, self._ttl_ms, self._replicas])
        if not claimed:
            raise AddressInUse(address)
        send, receive = anyio.create_memory_object_stream[JSONObject](self._fanout.buffer)
        key = channel.encode()
        self._addressed[key] = send
        self._presence[key] = presence
        try:
            await self._join(channel)
            self._keep_beating()
            async with receive:
                yield receive
        finally:
            if self._addressed.get(key) is send:
                del self._addressed[key]
            self._presence.pop(key, None)
            send.close()
            with anyio.CancelScope(shield=True):
                await self._leave(channel)
                with suppress(*OUTAGE_ERRORS):  # lapses by its TTL otherwise
                    await self._release(keys=[presence], args=[self._token])

    async def hold(self, address: str) -> bool:
        """Take ``address`` without listening on it (nothing is delivered there): False if a live
        listener or holder has it. A dead replica's hold is taken over at once."""
        presence, _ = self._keys(address)
        await self._ensure_alive()
        with unavailable:
            held = await self._claim(keys=[presence], args=[self._token, self._ttl_ms, self._replicas])
        if not held:
            return False
        self._held.add(presence)
        self._keep_beating()
        return True

    async def release_hold(self, address: str) -> None:
        presence, _ = self._keys(address)
        if presence in self._held:
            self._held.discard(presence)
            with suppress(*OUTAGE_ERRORS):  # lapses by its TTL otherwise
                await self._release(keys=[presence], args=[self._token])

    def _keep_beating(self) -> None:
        """Start the heartbeat that renews this replica's presence keys, unless it runs."""
        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = asyncio.get_running_loop().create_task(self._beat())

    async def _ensure_alive(self) -> None:
        """Subscribe to this replica's liveness channel, once: a probe that reaches it proves
        every address this replica holds is still held."""
        if self._alive:
            return
        async with self._alive_lock:
            if not self._alive:
                await self._join(self._replicas + self._token)
                self._alive = True

    async def aclose(self) -> None:
        for task in (self._reader, self._heartbeat):
            if task is not None:
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task
        self._reader = self._heartbeat = None
        if self._pubsub is not None:
            pubsub, self._pubsub = self._pubsub, None
            self._alive = False  # a later listener subscribes the liveness channel again
            await pubsub.aclose()
