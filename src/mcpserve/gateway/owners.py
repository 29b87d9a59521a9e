"""Per-session children across gateway replicas: each session's child runs on one replica, and a
request for the session that lands on another is forwarded there over the message bus.

The replica that starts a session's child holds ``gateway-child/<upstream>/<digest of the key>``
while the child lives (the key names the principal and the session, so another principal's
requests can never reach it). A replica without the child tries to take the address: it is
free (no child yet, or its holder died) and it starts the child itself, or someone holds it and
the request is forwarded: the holder runs it on the child and relays progress, the upstream's
questions (asked of the client by the replica the client talks to) and the outcome.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable

import anyio

from mcpserve.errors import StoreUnavailable
from mcpserve.gateway.forward import Bridge, forwarded_meta
from mcpserve.gateway.relay import Relayed, failure_message
from mcpserve.gateway.rpc import UpstreamFailure, UpstreamRpcError
from mcpserve.gateway.session import Session
from mcpserve.observability.logs import get_logger
from mcpserve.store.base import AddressInUse, MessageBus
from mcpserve.types import JSONObject

__all__ = ["SessionOwners"]

logger = get_logger("mcpserve.gateway")


class SessionOwners:
    def __init__(self, upstream: str, bridge: Bridge, acquire: Callable[[str], Awaitable[Session]]) -> None:
        self.upstream = upstream
        self._bridge = bridge
        self._acquire = acquire
        self._claims: dict[str, asyncio.Future[bool]] = {}
        self._holds: dict[str, asyncio.Task[None]] = {}

    def address(self, key: str) -> str:
        return f"gateway-child/{self.upstream}/{hashlib.sha256(key.encode()).hexdigest()[:32]}"

    async def route(self, bus: MessageBus, key: str) -> str | None:
        """None: serve the request here (this replica holds the session's child, or now does);
        otherwise the address of the replica holding it."""
        claim = self._claims.get(key)
        if claim is None:
            claim = self._claims[key] = asyncio.get_running_loop().create_future()
            self._holds[key] = asyncio.create_task(self._hold(bus, key, claim))
        return None if await claim else self.address(key)

    async def _hold(self, bus: MessageBus, key: str, claim: asyncio.Future[bool]) -> None:
        calls: dict[str, anyio.CancelScope] = {}
        try:
            async with bus.listen(self.address(key)) as requests, anyio.create_task_group() as group:
                claim.set_result(True)
                async for request in requests:
                    cancel, reply = request.get("cancel"), request.get("reply")
                    if isinstance(cancel, str) and cancel in calls:
                        calls[cancel].cancel()
                    elif isinstance(reply, str) and isinstance(request.get("method"), str):
                        group.start_soon(self._serve, bus, key, request, calls)
        except AddressInUse:
            claim.set_result(False)  # held elsewhere
        except StoreUnavailable:
            logger.warning("a per-session child is served without being reachable from other replicas")
            claim.set_result(True)
        finally:
            # Asked again next time: a holder elsewhere may have died, Redis may be back.
            if self._claims.get(key) is claim:
                del self._claims[key]
            if self._holds.get(key) is asyncio.current_task():
                del self._holds[key]
            if not claim.done():
                claim.set_result(False)

    async def _serve(
        self, bus: MessageBus, key: str, request: JSONObject, calls: dict[str, anyio.CancelScope]
    ) -> None:
        reply = str(request["reply"])
        capabilities = request.get("capabilities")
        client = Relayed(
            bus,
            reply,
            request.get("principal"),
            capabilities if isinstance(capabilities, dict) else {},
            era="legacy",
        )
        params = request.get("params")
        params = params if isinstance(params, dict) else {}
        meta = forwarded_meta(request.get("meta") if isinstance(request.get("meta"), dict) else None)
        with anyio.CancelScope() as scope:
            calls[reply] = scope
            try:
                session = await self._acquire(key)
                exchange = session.start(
                    str(request["method"]), {**params, "_meta": meta} if meta else params
                )
                await self._bridge.serve(client, session, exchange)
            except (UpstreamFailure, UpstreamRpcError, TimeoutError) as exc:
                await bus.deliver(reply, failure_message(exc))
            finally:
                calls.pop(reply, None)

    def release(self, key: str) -> None:
        """The session's child stopped: another replica (or this one) may start the next one."""
        self._claims.pop(key, None)
        hold = self._holds.pop(key, None)
        if hold is not None:
            hold.cancel()

    async def close(self) -> None:
        holds = list(self._holds.values())
        self._holds.clear()
        self._claims.clear()
        for hold in holds:
            hold.cancel()
        await asyncio.gather(*holds, return_exceptions=True)
