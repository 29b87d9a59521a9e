"""``Upstream``: one mounted MCP server, from its configuration to the entries it serves.

``app.mount("time", Upstream.stdio("mcp-server-time"))`` registers start and stop hooks, a
non-critical readiness check and metrics on the app; at start the upstream is opened and listed,
and its tools, resources and prompts join the app's under ``time__``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from mcpserve.config import child_environment, header_values
from mcpserve.errors import InvalidParams
from mcpserve.gateway.catalog import Catalogue, install
from mcpserve.gateway.config import UpstreamSpec
from mcpserve.gateway.forward import Bridge, request_failure, tool_failure
from mcpserve.gateway.health import register_health
from mcpserve.gateway.naming import SEPARATOR, served_uri, upstream_uri
from mcpserve.gateway.owners import SessionOwners
from mcpserve.gateway.pool import ChildPool, isolation_key
from mcpserve.gateway.relay import forward
from mcpserve.gateway.rpc import UpstreamFailure, UpstreamRpcError
from mcpserve.gateway.session import Session, StdioSession, list_all
from mcpserve.observability.logs import get_logger
from mcpserve.principal import Principal
from mcpserve.server.context import Context, InputRequired
from mcpserve.server.resources import ResourceContents
from mcpserve.store.base import MessageBus
from mcpserve.store.memory import MemoryMessageBus
from mcpserve.types import JSONObject

if TYPE_CHECKING:
    from mcpserve.server.app import MCPServer

__all__ = ["Upstream"]

logger = get_logger("mcpserve.gateway")
_LIST_CHANGED = {
    "notifications/tools/list_changed",
    "notifications/resources/list_changed",
    "notifications/prompts/list_changed",
}


class Upstream:
    """An upstream MCP server to mount; build it with :meth:`stdio`, :meth:`http` or :meth:`from_spec`."""

    def __init__(self, options: dict[str, Any]) -> None:
        self._options = options
        self.spec: UpstreamSpec | None = None
        self.server: MCPServer | None = None
        self.pool: ChildPool | None = None
        self.bridge: Bridge | None = None
        self.owners: SessionOwners | None = None
        self.catalogue = Catalogue()
        self.calls = 0
        self._headers: dict[str, str] = {}
        self._subscriptions: set[str] = set()  # upstream URIs subscribed on the shared session
        self._relisting: asyncio.Task[None] | None = None
        self._probing: asyncio.Task[None] | None = None

    @classmethod
    def stdio(cls, command: str, args: list[str] | tuple[str, ...] = (), **options: Any) -> Upstream:
        """A program speaking MCP on stdin/stdout; ``options`` are the ``[[upstreams]]`` keys."""
        return cls({"command": command, "args": list(args), **options})

    @classmethod
    def http(cls, url: str, **options: Any) -> Upstream:
        """A remote Streamable HTTP server; ``headers`` are sent as given (never a client's token)."""
        return cls({"url": url, **options})

    @classmethod
    def from_spec(cls, spec: UpstreamSpec) -> Upstream:
        upstream = cls(spec.model_dump(exclude={"name"}, exclude_unset=True))
        upstream.spec = spec
        return upstream

    @property
    def name(self) -> str:
        assert self.spec is not None
        return self.spec.name

    # -- Mountable ----------------------------------------------------------------------------------
    def attach(self, server: MCPServer, name: str) -> None:
        if self.spec is None or self.spec.name != name:
            self.spec = UpstreamSpec(name=name, **self._options)
        self.server = server
        # Header secrets are read now, so a missing variable or file stops the start (exit 2).
        self._headers = header_values(self.spec) if self.spec.kind == "http" else {}
        self.bridge = Bridge(name, self.spec.timeout, self._message_bus)
        self.owners = SessionOwners(name, self.bridge, self._child)
        self.pool = ChildPool(self.spec, self._open, self._ready, self.owners.release)
        server.on_startup(self.start)
        server.on_shutdown(self.stop)
        server.route_completions(name, self.complete)
        server.route_subscriptions(name, self.subscribe)
        register_health(server, self)

    def _message_bus(self) -> MessageBus | None:
        """The server's bus when it delivers to addresses (Redis: across replicas). Read at each
        use: the runtime replaces the bus after mounting when the state lives in Redis."""
        bus = self.server.bus if self.server is not None else None
        return bus if isinstance(bus, MessageBus) else None

    async def start(self) -> None:
        """Open the upstream (in the background: a slow or broken one never holds up the rest)."""
        assert self.pool is not None and self.spec is not None
        self.pool.start()
        if self.spec.isolation != "shared":
            # Children start on first use; one short-lived child tells what they serve.
            self._probing = asyncio.create_task(self._probe())

    async def stop(self) -> None:
        assert self.pool is not None and self.bridge is not None
        if self._probing is not None and not self._probing.done():
            self._probing.cancel()  # its session closes on the way out
            with contextlib.suppress(asyncio.CancelledError):
                await self._probing
        await self.bridge.close()
        if self.owners is not None:
            await self.owners.close()
        await self.pool.stop()

    # -- sessions -----------------------------------------------------------------------------------
    async def _open(self, on_exit: Any) -> Session:
        assert self.spec is not None
        if self.spec.kind == "stdio":
            return await StdioSession.open(self.spec, child_environment(self.spec), self._notified, on_exit)
        from mcpserve.gateway.http import HttpSession  # noqa: PLC0415 - only HTTP upstreams need it

        return await HttpSession.open(self.spec, self._headers, self._notified)

    async def _probe(self) -> None:
        assert self.spec is not None
        try:
            session = await self._open(lambda code: None)
        except Exception as exc:
            logger.warning("upstream could not be listed", upstream=self.spec.name, reason=str(exc)[:200])
            return
        try:
            await self._ready(session, False)
        finally:
            await session.close()

    async def _ready(self, session: Session, restarted: bool) -> None:
        """List what the session serves and install it; after a restart, announce the lists."""
        assert self.server is not None and self.spec is not None
        capabilities = session.capabilities
        catalogue = Catalogue()
        if "tools" in capabilities:
            catalogue.tools = await list_all(session, "tools/list", "tools")
        if "resources" in capabilities:
            catalogue.resources = await list_all(session, "resources/list", "resources")
            catalogue.templates = await list_all(session, "resources/templates/list", "resourceTemplates")
        if "prompts" in capabilities:
            catalogue.prompts = await list_all(session, "prompts/list", "prompts")
        self.catalogue = catalogue
        install(self.server, self.spec, catalogue, self.call_tool, self.read_resource, self.get_prompt)
        logger.info(
            "upstream listed", upstream=self.spec.name, tools=len(catalogue.tools), restarted=restarted
        )
        for uri in self._subscriptions:  # a restarted upstream knows none of them any more
            await session.call("resources/subscribe", {"uri": uri})
        if restarted:
            await self.server.notify_tools_changed()
            await self.server.notify_resources_changed()
            await self.server.notify_prompts_changed()

    def _notified(self, method: str, params: JSONObject) -> None:
        assert self.spec is not None and self.server is not None
        if method in _LIST_CHANGED:
            if self._relisting is None or self._relisting.done():
                self._relisting = asyncio.create_task(self._relist())
        elif method == "notifications/resources/updated" and isinstance(params.get("uri"), str):
            uri = served_uri(self.spec.name, params["uri"])
            asyncio.create_task(self.server.notify_resource_updated(uri))  # noqa: RUF006 - a publish
        elif method == "notifications/message":
            logger.info(
                "upstream log",
                upstream=self.spec.name,
                level=params.get("level"),
                data=str(params.get("data"))[:2000],
            )

    async def _relist(self) -> None:
        """An upstream said its lists changed: list it again and tell our clients."""
        assert self.pool is not None and self.spec is not None
        session = next((s.session for s in self.pool.children.values() if s.session is not None), None)
        if session is None:
            return
        try:
            await self._ready(session, True)
        except Exception as exc:
            logger.warning("upstream re-listing failed", upstream=self.spec.name, reason=str(exc)[:200])

    def _ready_session(self, ctx: Context) -> Session | None:
        """The call's child session when it is ready now (else ``_session`` waits for it)."""
        assert self.pool is not None and self.spec is not None
        return self.pool.ready(isolation_key(self.spec, ctx))

    async def _session(self, ctx: Context) -> Session:
        assert self.spec is not None
        return await self._child(isolation_key(self.spec, ctx))

    async def _child(self, key: str) -> Session:
        assert self.pool is not None
        supervisor = await self.pool.acquire(key)
        return await supervisor.ready_session()

    def _run(self, ctx: Context, method: str, params: JSONObject) -> Awaitable[JSONObject | InputRequired]:
        """Run here, or, for a 2025-era session whose child runs on another replica, there."""
        assert self.bridge is not None and self.spec is not None
        if self.spec.isolation == "per-session" and ctx.session is not None:
            bus = self._message_bus()
            if bus is not None and not isinstance(bus, MemoryMessageBus):
                return self._run_routed(bus, ctx, method, params)
        return self.bridge.run(ctx, self._ready_session(ctx), self._session, method, params)

    async def _run_routed(
        self, bus: MessageBus, ctx: Context, method: str, params: JSONObject
    ) -> JSONObject | InputRequired:
        assert self.bridge is not None and self.spec is not None and self.owners is not None
        target = await self.owners.route(bus, isolation_key(self.spec, ctx))
        if target is not None:
            return await forward(bus, target, self.name, ctx, method, params)
        return await self.bridge.run(ctx, self._ready_session(ctx), self._session, method, params)

    # -- forwarding ---------------------------------------------------------------------------------
    async def call_tool(self, name: str, arguments: JSONObject, ctx: Context) -> JSONObject | InputRequired:
        self.calls += 1
        try:
            return await self._run(ctx, "tools/call", {"name": name, "arguments": arguments})
        except (UpstreamFailure, UpstreamRpcError, TimeoutError) as exc:
            raise tool_failure(self.name, exc) from None

    async def get_prompt(self, name: str, arguments: JSONObject, ctx: Context) -> Any:
        assert self.bridge is not None
        params: JSONObject = {"name": name, "arguments": arguments}
        try:
            result = await self._run(ctx, "prompts/get", params)
        except (UpstreamFailure, UpstreamRpcError, TimeoutError) as exc:
            raise request_failure(self.name, exc) from None
        if isinstance(result, InputRequired):
            return result
        messages = result.get("messages")
        return messages if isinstance(messages, list) else []

    async def subscribe(self, served: str) -> None:
        """Subscribe upstream to a resource a client subscribed to (once per URI, shared sessions).

        Pooled children are per caller; a subscription belongs to no one child, so it is refused.
        """
        assert self.pool is not None and self.spec is not None
        uri = upstream_uri(self.spec.name, served)
        if uri is None or uri in self._subscriptions:
            return
        if self.spec.isolation != "shared":
            raise InvalidParams(
                f"Upstream {self.name!r} runs a child per caller: subscribe to its resources is not offered"
            )
        try:
            session = await (await self.pool.acquire("shared")).ready_session()
            await session.call("resources/subscribe", {"uri": uri})
        except (UpstreamFailure, UpstreamRpcError, TimeoutError) as exc:
            raise request_failure(self.name, exc) from None
        self._subscriptions.add(uri)

    async def complete(self, params: JSONObject, principal: Principal | None) -> JSONObject:
        """``completion/complete`` for one of this upstream's prompts or resource templates."""
        assert self.pool is not None and self.spec is not None
        ref = dict(params["ref"])
        if ref.get("type") == "ref/prompt":
            ref["name"] = ref["name"].partition(SEPARATOR)[2]
        else:
            ref["uri"] = upstream_uri(self.spec.name, ref["uri"])
        key = "shared" if self.spec.isolation == "shared" or principal is None else principal.key
        forwarded: JSONObject = {"ref": ref, "argument": params.get("argument")}
        if "context" in params:
            forwarded["context"] = params["context"]
        try:
            session = await (await self.pool.acquire(key)).ready_session()
            result = await session.call("completion/complete", forwarded)
        except (UpstreamFailure, UpstreamRpcError, TimeoutError) as exc:
            raise request_failure(self.name, exc) from None
        completion = result.get("completion")
        return completion if isinstance(completion, dict) else {"values": []}

    async def read_resource(self, uri: str, served: str, ctx: Context) -> Any:
        assert self.bridge is not None and self.spec is not None
        try:
            result = await self._run(ctx, "resources/read", {"uri": uri})
        except (UpstreamFailure, UpstreamRpcError, TimeoutError) as exc:
            raise request_failure(self.name, exc, served) from None
        if isinstance(result, InputRequired):
            return result
        contents = result.get("contents")
        items = [
            {**item, "uri": served_uri(self.spec.name, item["uri"])}
            if isinstance(item.get("uri"), str)
            else item
            for item in (contents if isinstance(contents, list) else [])
            if isinstance(item, dict)
        ]
        return ResourceContents(items)
