"""A live connection to one upstream, whatever its transport: open, ask, list, close."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Final, Protocol

from mcpserve._version import __version__
from mcpserve.gateway.config import UpstreamSpec
from mcpserve.gateway.rpc import Exchange, RpcPeer, UpstreamFailure
from mcpserve.gateway.stdio import ChildProcess
from mcpserve.types import JSONObject

__all__ = ["Session", "StdioSession", "list_all", "CLIENT_INFO", "CLIENT_CAPABILITIES", "LEGACY_VERSION"]

LEGACY_VERSION: Final = "2025-11-25"
CLIENT_INFO: Final[JSONObject] = {"name": "mcpserve-gateway", "version": __version__}
# The gateway can carry each of these to its own client (or answer them with an error).
CLIENT_CAPABILITIES: Final[JSONObject] = {"elicitation": {}, "sampling": {}, "roots": {}}
_MAX_PAGES = 1000

Notify = Callable[[str, JSONObject], None]


class Session(Protocol):
    upstream: str
    pid: int | None
    capabilities: JSONObject

    @property
    def in_flight(self) -> int: ...

    def start(self, method: str, params: JSONObject) -> Exchange: ...

    def cancel(self, exchange: Exchange, reason: str) -> None: ...

    def forget(self, exchange: Exchange) -> None: ...

    async def call(self, method: str, params: JSONObject | None = None) -> JSONObject: ...

    async def close(self) -> None: ...


async def list_all(session: Session, method: str, key: str) -> list[JSONObject]:
    """Every item of a paginated list (``tools/list`` → ``tools``)."""
    items: list[JSONObject] = []
    cursor: Any = None
    for _ in range(_MAX_PAGES):
        page = await session.call(method, {"cursor": cursor} if cursor else {})
        found = page.get(key)
        items.extend(item for item in (found if isinstance(found, list) else []) if isinstance(item, dict))
        cursor = page.get("nextCursor")
        if not cursor:
            return items
    raise UpstreamFailure(f"Upstream {session.upstream!r} lists more than {_MAX_PAGES} pages of {key}")


class StdioSession:
    """A child process speaking 2025-era MCP on stdin/stdout (stdio has no 2026-07-28 form yet)."""

    def __init__(self, spec: UpstreamSpec, peer: RpcPeer) -> None:
        self.upstream = spec.name
        self.spec = spec
        self.peer = peer
        self.child: ChildProcess | None = None
        self.pid: int | None = None
        self.capabilities: JSONObject = {}

    @classmethod
    async def open(
        cls, spec: UpstreamSpec, env: dict[str, str], on_notification: Notify, on_exit: Callable[[int], None]
    ) -> StdioSession:
        session: StdioSession

        def send(data: bytes) -> None:
            if session.child is not None:
                session.child.send(data)

        def exited(code: int) -> None:
            session.peer.close(f"Upstream {spec.name!r} exited (code {code}) during the call")
            on_exit(code)

        session = cls(spec, RpcPeer(spec.name, send, on_notification))
        try:
            session.child = await ChildProcess.spawn(spec, env, session.peer.receive, exited)
        except OSError as exc:
            raise UpstreamFailure(f"Upstream {spec.name!r} could not start: {exc.strerror or exc}") from None
        session.pid = session.child.pid
        try:
            async with asyncio.timeout(spec.start_timeout):
                result = await session.peer.call(
                    "initialize",
                    {
                        "protocolVersion": LEGACY_VERSION,
                        "capabilities": CLIENT_CAPABILITIES,
                        "clientInfo": CLIENT_INFO,
                    },
                )
        except BaseException:
            await session.close()
            raise
        capabilities = result.get("capabilities")
        session.capabilities = capabilities if isinstance(capabilities, dict) else {}
        session.peer.notify("notifications/initialized")
        return session

    @property
    def in_flight(self) -> int:
        return self.peer.in_flight

    def start(self, method: str, params: JSONObject) -> Exchange:
        return self.peer.start(method, params)

    def cancel(self, exchange: Exchange, reason: str) -> None:
        self.peer.cancel(exchange, reason)

    def forget(self, exchange: Exchange) -> None:
        self.peer.forget(exchange)

    async def call(self, method: str, params: JSONObject | None = None) -> JSONObject:
        async with asyncio.timeout(self.spec.timeout):
            return await self.peer.call(method, params)

    async def close(self) -> None:
        self.peer.close(f"Upstream {self.upstream!r} was stopped")
        if self.child is not None:
            await self.child.stop()
