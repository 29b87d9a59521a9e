"""``MCPServer``: what a tool author builds. Decorators register tools, resources and prompts.

The decorators mirror the official SDK's ``MCPServer`` so that porting means changing imports.
The server object holds definitions only; runtime policy (timeouts, sealing keys, transports)
comes from settings in the composition root, :mod:`mcpserve.runtime`.
"""

from __future__ import annotations

import fnmatch
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, TypeVar

from mcpserve._version import __version__
from mcpserve.errors import InvalidParams, MethodNotFound
from mcpserve.principal import Principal
from mcpserve.server.content import ToolAnnotations
from mcpserve.server.invoke import invoke, is_async
from mcpserve.server.prompts import Prompt
from mcpserve.server.resources import Resource
from mcpserve.server.tools import Tool
from mcpserve.store.base import NotificationBus
from mcpserve.store.memory import MemoryNotificationBus
from mcpserve.types import JSONObject

__all__ = [
    "MCPServer",
    "PromptReference",
    "ResourceTemplateReference",
    "CompletionArgument",
    "CompletionContext",
    "Completion",
]

FnT = TypeVar("FnT", bound=Callable[..., Any])
Hook = Callable[[], Awaitable[None]]
ReadinessCheck = Callable[[], Awaitable[None]]
CompletionRoute = Callable[[JSONObject, Principal | None], Awaitable[JSONObject]]
SubscriptionRoute = Callable[[str], Awaitable[None]]
_MAX_COMPLETIONS = 100


@dataclass(slots=True, frozen=True)
class PromptReference:
    name: str
    type: str = "ref/prompt"


@dataclass(slots=True, frozen=True)
class ResourceTemplateReference:
    uri: str
    type: str = "ref/resource"


@dataclass(slots=True, frozen=True)
class CompletionArgument:
    name: str
    value: str


@dataclass(slots=True, frozen=True)
class CompletionContext:
    arguments: dict[str, str]


@dataclass(slots=True, frozen=True)
class Completion:
    values: list[str]
    total: int | None = None
    has_more: bool | None = None


def _visible(scopes: frozenset[str], principal: Principal | None) -> bool:
    # Without authentication there is no principal and nothing is scoped away.
    return principal is None or principal.has_scopes(scopes)


def _audience(principal: Principal | None) -> object:
    """What a filtered list depends on: callers with the same scopes see the same list."""
    if principal is None:
        return None
    return True if principal.all_scopes else principal.scopes


_MAX_CACHED_LISTS = 512  # distinct scope sets; past that the cache starts over


class Mountable(Protocol):
    """Something ``MCPServer.mount`` can attach under a name (the gateway's ``Upstream``)."""

    def attach(self, server: MCPServer, name: str) -> None: ...


class MCPServer:
    """An MCP server definition: name, instructions, and the tools, resources and prompts it offers."""

    # What run() hands the server to: the runtime's serve, set by the mcpserve package when it is
    # imported (always, before this module). The server layer may not import the composition root.
    runner: ClassVar[Callable[..., None] | None] = None

    def __init__(
        self,
        name: str = "mcpserve",
        *,
        version: str | None = None,
        title: str | None = None,
        instructions: str | None = None,
        website_url: str | None = None,
        bus: NotificationBus | None = None,
    ) -> None:
        self.name = name
        self.version = version or __version__
        self.instructions = instructions
        self.info: JSONObject = {"name": name, "version": self.version}
        if title:
            self.info["title"] = title
        if website_url:
            self.info["websiteUrl"] = website_url
        self.bus: NotificationBus = bus or MemoryNotificationBus()
        self._tools: dict[str, Tool] = {}
        self._resources: dict[str, Resource] = {}
        self._templates: list[Resource] = []
        self._prompts: dict[str, Prompt] = {}
        self._completion: Callable[..., Any] | None = None
        # Completions for references under a mount (``name__prompt``, ``name+uri``), by mount name.
        self._completion_routes: dict[str, CompletionRoute] = {}
        # Resource subscriptions for URIs under a mount (``name+uri``), passed on to it.
        self._subscription_routes: dict[str, SubscriptionRoute] = {}
        self._startup: list[Hook] = []
        self._shutdown: list[Hook] = []
        self.readiness_checks: dict[str, ReadinessCheck] = {}
        self.noncritical_checks: set[str] = set()  # reported by readiness, never fail it
        self.metric_collectors: list[Any] = []  # prometheus collectors the HTTP app registers
        self.mounts: dict[str, Mountable] = {}
        # MCPSERVE_TOOL_SCOPES entries with wildcards (``upstream__*``), also for tools added later.
        self._scope_rules: list[tuple[str, frozenset[str]]] = []
        # Filtered definition lists per (kind, audience); dropped whenever a definition changes,
        # so a page of a 10,000-tool catalogue is a slice, not a walk of the whole registry.
        self._lists: dict[tuple[str, object], list[JSONObject]] = {}

    # -- registration -------------------------------------------------------------------------------
    def tool(
        self,
        name: str | None = None,
        title: str | None = None,
        description: str | None = None,
        annotations: ToolAnnotations | None = None,
        icons: list[JSONObject] | None = None,
        meta: JSONObject | None = None,
        structured_output: bool | None = None,
        *,
        scopes: Iterable[str] = (),
        timeout: float | None = None,
    ) -> Callable[[FnT], FnT]:
        """Register a function as a tool. Use as ``@server.tool()``.

        ``timeout`` (seconds) replaces the default tool time limit for this tool; the operator's
        ``MCPSERVE_TOOL_TIMEOUTS`` setting still overrides it.
        """
        if callable(name):
            raise TypeError("Use @server.tool() with parentheses")

        def register(fn: FnT) -> FnT:
            self.add_tool(
                fn,
                name=name,
                title=title,
                description=description,
                annotations=annotations,
                icons=icons,
                meta=meta,
                structured_output=structured_output,
                scopes=scopes,
                timeout=timeout,
            )
            return fn

        return register

    def add_tool(self, fn: Callable[..., Any], *, scopes: Iterable[str] = (), **options: Any) -> Tool:
        return self.register_tool(Tool.from_function(fn, scopes=frozenset(scopes), **options))

    def register_tool(self, tool: Tool, *, replace: bool = False) -> Tool:
        """Add a built tool (a forwarded one, say); wildcard scope rules apply to it."""
        if tool.name in self._tools and not replace:
            raise ValueError(f"A tool named {tool.name!r} is already registered")
        for pattern, scopes in self._scope_rules:
            if fnmatch.fnmatchcase(tool.name, pattern):
                tool.scopes = scopes
        self._tools[tool.name] = tool
        self._lists.clear()
        return tool

    def set_tool_scopes(self, name: str, scopes: Iterable[str]) -> None:
        """Replace the scopes a tool requires (configuration overriding the decorator).

        ``name`` may be a pattern (``upstream__*``): it applies to every matching tool, now and
        when tools are added later. An exact name must be registered, or lie under a mount
        (``upstream__tool``), whose tools arrive once the upstream has been listed.
        """
        wanted = frozenset(scopes)
        if any(c in name for c in "*?[") or self._under_mount(name):
            self._scope_rules.append((name, wanted))
            for tool in self._tools.values():
                if fnmatch.fnmatchcase(tool.name, name):
                    tool.scopes = wanted
            self._lists.clear()
            return
        found = self._tools.get(name)
        if found is None:
            raise KeyError(f"No tool named {name!r}")
        found.scopes = wanted
        self._lists.clear()

    def remove_tool(self, name: str) -> None:
        if self._tools.pop(name, None) is None:
            raise KeyError(f"No tool named {name!r}")
        self._lists.clear()

    # -- mounted upstreams ------------------------------------------------------------------------
    def mount(self, name: str, upstream: Mountable) -> None:
        """Serve another MCP server's tools, resources and prompts under ``name__`` (the gateway).

        ``upstream`` is built with ``mcpserve.gateway.Upstream.stdio(...)`` or ``.http(...)``.
        """
        if name in self.mounts:
            raise ValueError(f"An upstream named {name!r} is already mounted")
        upstream.attach(self, name)
        self.mounts[name] = upstream

    def _under_mount(self, name: str) -> bool:
        prefix, separator, rest = name.partition("__")
        return bool(separator and rest) and prefix in self.mounts

    def knows_tool(self, name: str) -> bool:
        """Whether configuration may name this tool: registered, or under a mounted upstream."""
        return name in self._tools or self._under_mount(name)

    def add_metrics_collector(self, collector: Any) -> None:
        """A prometheus-client collector the HTTP app's registry will include."""
        self.metric_collectors.append(collector)

    def resource(
        self,
        uri: str,
        *,
        name: str | None = None,
        title: str | None = None,
        description: str | None = None,
        mime_type: str | None = None,
        annotations: JSONObject | None = None,
        scopes: Iterable[str] = (),
    ) -> Callable[[FnT], FnT]:
        """Register a resource; a URI with ``{variables}`` registers an RFC 6570 template."""
        if callable(uri):
            raise TypeError("Use @server.resource('uri') with a URI")

        def register(fn: FnT) -> FnT:
            resource = Resource.from_function(
                fn,
                uri,
                name=name,
                title=title,
                description=description,
                mime_type=mime_type,
                annotations=annotations,
                scopes=frozenset(scopes),
            )
            self.register_resource(resource)
            return fn

        return register

    def register_resource(self, resource: Resource) -> Resource:
        """Add a built resource or template (a forwarded one, say)."""
        if resource.template is not None:
            self._templates.append(resource)
        else:
            if resource.uri in self._resources:
                raise ValueError(f"A resource with URI {resource.uri!r} is already registered")
            self._resources[resource.uri] = resource
        self._lists.clear()
        return resource

    def remove_resources(self, keep: Callable[[Resource], bool]) -> None:
        """Drop every resource and template ``keep`` rejects."""
        self._resources = {uri: r for uri, r in self._resources.items() if keep(r)}
        self._templates = [t for t in self._templates if keep(t)]
        self._lists.clear()

    def prompt(
        self,
        name: str | None = None,
        title: str | None = None,
        description: str | None = None,
        icons: list[JSONObject] | None = None,
        *,
        scopes: Iterable[str] = (),
    ) -> Callable[[FnT], FnT]:
        """Register a function as a prompt template."""
        if callable(name):
            raise TypeError("Use @server.prompt() with parentheses")

        def register(fn: FnT) -> FnT:
            self.add_prompt(fn, name=name, title=title, description=description, icons=icons, scopes=scopes)
            return fn

        return register

    def add_prompt(self, fn: Callable[..., Any], *, scopes: Iterable[str] = (), **options: Any) -> Prompt:
        return self.register_prompt(Prompt.from_function(fn, scopes=frozenset(scopes), **options))

    def register_prompt(self, prompt: Prompt, *, replace: bool = False) -> Prompt:
        if prompt.name in self._prompts and not replace:
            raise ValueError(f"A prompt named {prompt.name!r} is already registered")
        self._prompts[prompt.name] = prompt
        self._lists.clear()
        return prompt

    def remove_prompt(self, name: str) -> None:
        if self._prompts.pop(name, None) is None:
            raise KeyError(f"No prompt named {name!r}")
        self._lists.clear()

    def completion(self) -> Callable[[FnT], FnT]:
        """Register the argument-completion handler: ``(ref, argument, context) -> Completion | list``."""

        def register(fn: FnT) -> FnT:
            self._completion = fn
            return fn

        return register

    # -- lookup (deterministic order: registration order) ---------------------------------------------
    def capabilities(self) -> JSONObject:
        capabilities: JSONObject = {
            "tools": {"listChanged": True},
            "prompts": {"listChanged": True},
            "resources": {"subscribe": True, "listChanged": True},
            "logging": {},
        }
        if self._completion is not None or self._completion_routes:
            capabilities["completions"] = {}
        return capabilities

    def tool_names(self) -> list[str]:
        """Every registered tool, visible or not (configuration refers to tools by name)."""
        return list(self._tools)

    def registered_tool(self, name: str) -> Tool | None:
        """The tool registered under ``name``, whoever may see it (metrics, header checks)."""
        return self._tools.get(name)

    def visible_tools(self, principal: Principal | None) -> list[Tool]:
        return [t for t in self._tools.values() if _visible(t.scopes, principal)]

    def visible_prompts(self, principal: Principal | None) -> list[Prompt]:
        return [p for p in self._prompts.values() if _visible(p.scopes, principal)]

    def visible_resources(self, principal: Principal | None) -> list[Resource]:
        return [r for r in self._resources.values() if _visible(r.scopes, principal)]

    def visible_templates(self, principal: Principal | None) -> list[Resource]:
        return [t for t in self._templates if _visible(t.scopes, principal)]

    def definitions(self, kind: str, principal: Principal | None) -> list[JSONObject]:
        """The definitions of ``kind`` (tools, prompts, resources, resourceTemplates) ``principal``
        may see, built once per change and scope set. Callers must not modify the list."""
        key = (kind, _audience(principal))
        found = self._lists.get(key)
        if found is None:
            if len(self._lists) >= _MAX_CACHED_LISTS:
                self._lists.clear()
            visible = _LISTERS[kind](self, principal)
            found = self._lists[key] = [item.definition for item in visible]
        return found

    def scopes_for(self, method: str, params: JSONObject) -> frozenset[str]:
        """The scopes a request needs: those of the tool, prompt or resource it names (else none)."""
        name = params.get("name")
        if method == "tools/call" and isinstance(name, str) and name in self._tools:
            return self._tools[name].scopes
        if method == "prompts/get" and isinstance(name, str) and name in self._prompts:
            return self._prompts[name].scopes
        uri = params.get("uri")
        if method == "resources/read" and isinstance(uri, str):
            found = self.find_resource(uri, None)
            return found[0].scopes if found is not None else frozenset()
        return frozenset()

    def find_tool(self, name: str, principal: Principal | None) -> Tool | None:
        tool = self._tools.get(name)
        return tool if tool is not None and _visible(tool.scopes, principal) else None

    def find_prompt(self, name: str, principal: Principal | None) -> Prompt | None:
        prompt = self._prompts.get(name)
        return prompt if prompt is not None and _visible(prompt.scopes, principal) else None

    def find_resource(self, uri: str, principal: Principal | None) -> tuple[Resource, dict[str, Any]] | None:
        resource = self._resources.get(uri)
        if resource is not None:
            return (resource, {}) if _visible(resource.scopes, principal) else None
        for template in self._templates:
            variables = template.match(uri)
            if variables is not None and _visible(template.scopes, principal):
                return template, variables
        return None

    def route_completions(self, mount: str, route: CompletionRoute) -> None:
        """Send ``completion/complete`` for references under ``mount`` to ``route`` (the gateway)."""
        self._completion_routes[mount] = route

    def route_subscriptions(self, mount: str, route: SubscriptionRoute) -> None:
        """Pass subscriptions to URIs under ``mount`` on to ``route`` (the gateway subscribes upstream)."""
        self._subscription_routes[mount] = route

    async def subscribed(self, uri: str) -> None:
        """A client subscribed to ``uri``: a mounted upstream owning it subscribes in turn."""
        if self._subscription_routes:
            route = self._subscription_routes.get(uri.partition("+")[0])
            if route is not None:
                await route(uri)

    def _completion_route(self, ref: object) -> CompletionRoute | None:
        if not isinstance(ref, dict) or not self._completion_routes:
            return None
        name, uri = ref.get("name"), ref.get("uri")
        if ref.get("type") == "ref/prompt" and isinstance(name, str):
            mount = name.partition("__")[0]
            return self._completion_routes.get(mount) if self.find_prompt(name, None) is not None else None
        if ref.get("type") == "ref/resource" and isinstance(uri, str):
            return self._completion_routes.get(uri.partition("+")[0])
        return None

    async def complete(self, params: JSONObject, principal: Principal | None) -> JSONObject:
        route = self._completion_route(params.get("ref"))
        if route is not None:
            if not self._completion_allowed(params.get("ref"), principal):
                raise InvalidParams("Unknown completion reference")
            return await route(params, principal)
        if self._completion is None:
            raise MethodNotFound("Method not found: completion/complete (this server offers no completions)")
        ref, argument = params.get("ref"), params.get("argument")
        if not isinstance(ref, dict) or not isinstance(argument, dict):
            raise InvalidParams("completion/complete needs params.ref and params.argument objects")
        if ref.get("type") == "ref/prompt" and isinstance(ref.get("name"), str):
            if self.find_prompt(ref["name"], principal) is None:
                raise InvalidParams(f"Unknown prompt: {ref['name']!r}")
            reference: Any = PromptReference(ref["name"])
        elif ref.get("type") == "ref/resource" and isinstance(ref.get("uri"), str):
            known = [t.definition["uriTemplate"] for t in self.visible_templates(principal)]
            known += [r.uri for r in self.visible_resources(principal)]
            if ref["uri"] not in known:
                raise InvalidParams(f"Unknown resource template: {ref['uri']!r}")
            reference = ResourceTemplateReference(ref["uri"])
        else:
            raise InvalidParams(
                'params.ref must be {"type": "ref/prompt", "name"} or {"type": "ref/resource", "uri"}'
            )
        if not isinstance(argument.get("name"), str) or not isinstance(argument.get("value"), str):
            raise InvalidParams("params.argument needs string name and value")
        context_args = (
            params.get("context", {}).get("arguments", {}) if isinstance(params.get("context"), dict) else {}
        )
        fn = self._completion
        answer = await invoke(
            fn,
            is_async(fn),
            {
                "ref": reference,
                "argument": CompletionArgument(argument["name"], argument["value"]),
                "context": CompletionContext(dict(context_args or {})),
            },
        )
        if answer is None:
            answer = Completion([])
        elif isinstance(answer, list):
            answer = Completion([str(v) for v in answer])
        values = answer.values[:_MAX_COMPLETIONS]
        result: JSONObject = {"values": values}
        total = answer.total if answer.total is not None else len(answer.values)
        result["total"] = total
        result["hasMore"] = bool(answer.has_more) or total > len(values)
        return result

    def _completion_allowed(self, ref: Any, principal: Principal | None) -> bool:
        if ref.get("type") == "ref/prompt":
            return self.find_prompt(ref["name"], principal) is not None
        known = [t.definition["uriTemplate"] for t in self.visible_templates(principal)]
        return ref["uri"] in known + [r.uri for r in self.visible_resources(principal)]

    # -- change notifications ---------------------------------------------------------------------------
    async def notify_tools_changed(self) -> None:
        await self.bus.publish({"method": "notifications/tools/list_changed", "params": {}})

    async def notify_prompts_changed(self) -> None:
        await self.bus.publish({"method": "notifications/prompts/list_changed", "params": {}})

    async def notify_resources_changed(self) -> None:
        await self.bus.publish({"method": "notifications/resources/list_changed", "params": {}})

    async def notify_resource_updated(self, uri: str) -> None:
        await self.bus.publish({"method": "notifications/resources/updated", "params": {"uri": uri}})

    # -- lifecycle -----------------------------------------------------------------------------------------
    def on_startup(self, hook: Hook) -> Hook:
        """Run ``hook`` before serving (open pools, warm caches). Usable as a decorator."""
        self._startup.append(hook)
        return hook

    def on_shutdown(self, hook: Hook) -> Hook:
        """Run ``hook`` after serving stops, in reverse registration order. Usable as a decorator."""
        self._shutdown.append(hook)
        return hook

    def add_readiness_check(self, name: str, check: ReadinessCheck, *, critical: bool = True) -> None:
        """Register a dependency check for readiness: ``check`` raises when ``name`` is not usable.

        A failing critical check makes the server not ready; a failing non-critical one (a
        dependency the server can serve without) is only reported, with readiness ``degraded``.
        """
        if name in self.readiness_checks:
            raise ValueError(f"A readiness check named {name!r} is already registered")
        self.readiness_checks[name] = check
        if not critical:
            self.noncritical_checks.add(name)

    @asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        """Run the startup hooks, serve, then the shutdown hooks (also when a startup hook failed)."""
        async with AsyncExitStack() as stack:
            for hook in self._shutdown:
                stack.push_async_callback(hook)
            for hook in self._startup:
                await hook()
            yield

    # -- running ----------------------------------------------------------------------------------------
    def run(self, transport: str = "stdio", **overrides: Any) -> None:
        """Serve this server with settings from the environment (plus ``overrides``)."""
        if MCPServer.runner is None:  # pragma: no cover - the mcpserve package always sets it
            raise RuntimeError("no runtime to serve with: import mcpserve")
        MCPServer.runner(self, transport=transport, **overrides)


_LISTERS: dict[str, Callable[[MCPServer, Principal | None], list[Any]]] = {
    "tools": MCPServer.visible_tools,
    "prompts": MCPServer.visible_prompts,
    "resources": MCPServer.visible_resources,
    "resourceTemplates": MCPServer.visible_templates,
}
