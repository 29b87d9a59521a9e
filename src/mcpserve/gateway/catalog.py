"""An upstream's tools, resources, templates and prompts as entries of the server's own registry.

Definitions pass through as the upstream wrote them, with names and URIs prefixed (naming.py);
the upstream validates arguments itself, so nothing is re-validated here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mcpserve.gateway.config import UpstreamSpec
from mcpserve.gateway.naming import served_name, served_uri, upstream_uri
from mcpserve.observability.logs import get_logger
from mcpserve.protocol.uritemplate import UriTemplate
from mcpserve.server.context import Context
from mcpserve.server.prompts import Prompt
from mcpserve.server.resources import Resource
from mcpserve.server.signature import FunctionSignature
from mcpserve.server.tools import TOOL_NAME, Tool
from mcpserve.types import JSONObject

if TYPE_CHECKING:
    from mcpserve.server.app import MCPServer

__all__ = ["Catalogue", "ForwardedTool", "ForwardedResource", "ForwardedPrompt", "install"]

logger = get_logger("mcpserve.gateway")
Forward = Callable[..., Awaitable[Any]]


async def _takes_context(ctx: Context) -> None:
    """Stands in for every forwarded handler's signature: it takes the request's Context only."""


_SIGNATURE = FunctionSignature.of(_takes_context, context_type=Context)


@dataclass(slots=True)
class ForwardedTool(Tool):
    upstream: str = ""

    def bind(self, arguments: JSONObject, context: Context | None) -> dict[str, Any]:
        return {"arguments": arguments, "ctx": context}

    def to_result(self, value: Any) -> JSONObject:
        # The upstream's CallToolResult as it sent it; isError made explicit, as ours always are.
        value.setdefault("isError", False)
        return value  # type: ignore[no-any-return]


@dataclass(slots=True)
class ForwardedResource(Resource):
    upstream: str = ""

    async def read(self, variables: dict[str, Any], context: Context) -> Any:
        return await self.fn(context)


@dataclass(slots=True)
class ForwardedPrompt(Prompt):
    upstream: str = ""

    async def render(self, arguments: JSONObject, context: Context) -> Any:
        return await self.fn(arguments, context)


@dataclass(slots=True)
class Catalogue:
    """What one upstream offers, as last listed."""

    tools: list[JSONObject] = field(default_factory=list)
    resources: list[JSONObject] = field(default_factory=list)
    templates: list[JSONObject] = field(default_factory=list)
    prompts: list[JSONObject] = field(default_factory=list)


def _tool(spec: UpstreamSpec, definition: JSONObject, call: Forward) -> ForwardedTool | None:
    original = definition.get("name")
    if not isinstance(original, str) or not spec.tools.admits(original):
        return None
    name = served_name(spec.name, spec.rename.get(original, original))
    if not TOOL_NAME.match(name):
        logger.warning("upstream tool skipped: its served name is not a valid tool name", upstream=spec.name)
        return None

    def forward(arguments: JSONObject, ctx: Context) -> Awaitable[Any]:
        return call(original, arguments, ctx)  # the upstream's coroutine, awaited by the dispatcher

    served = {**definition, "name": name}
    return ForwardedTool(name, forward, _SIGNATURE, True, None, served, frozenset(), spec.timeout, spec.name)


def _resource(
    spec: UpstreamSpec, definition: JSONObject, read: Forward, *, template: bool
) -> ForwardedResource | None:
    key = "uriTemplate" if template else "uri"
    uri = definition.get(key)
    if not isinstance(uri, str):
        return None
    served = served_uri(spec.name, uri)
    try:
        parsed = UriTemplate.parse(served) if template else None
    except ValueError:
        logger.warning("upstream resource template skipped: not RFC 6570", upstream=spec.name)
        return None

    async def forward(ctx: Context) -> Any:
        requested = ctx.params.get("uri")
        original = upstream_uri(spec.name, requested) if isinstance(requested, str) else None
        return await read(original or uri, served if original is None else requested, ctx)

    return ForwardedResource(
        served,
        parsed,
        forward,
        _SIGNATURE,
        True,
        definition.get("mimeType"),
        {**definition, key: served},
        frozenset(),
        spec.name,
    )


def _prompt(spec: UpstreamSpec, definition: JSONObject, get: Forward) -> ForwardedPrompt | None:
    original = definition.get("name")
    if not isinstance(original, str):
        return None
    name = served_name(spec.name, original)

    async def forward(arguments: JSONObject, ctx: Context) -> Any:
        return await get(original, arguments, ctx)

    return ForwardedPrompt(
        name, forward, _SIGNATURE, True, {**definition, "name": name}, frozenset(), spec.name
    )


def install(
    server: MCPServer, spec: UpstreamSpec, catalogue: Catalogue, call: Forward, read: Forward, get: Forward
) -> None:
    """Replace this upstream's entries in ``server`` with ``catalogue``'s."""
    for name in [n for n in server.tool_names() if _owned(server.registered_tool(n), spec.name)]:
        server.remove_tool(name)
    server.remove_resources(lambda r: not _owned(r, spec.name))
    for prompt in [p for p in server.visible_prompts(None) if _owned(p, spec.name)]:
        server.remove_prompt(prompt.name)
    for definition in catalogue.tools:
        tool = _tool(spec, definition, call)
        if tool is not None:
            _register(spec, tool.name, server.register_tool, tool)
    for definitions, template in ((catalogue.resources, False), (catalogue.templates, True)):
        for definition in definitions:
            resource = _resource(spec, definition, read, template=template)
            if resource is not None and (template or server.find_resource(resource.uri, None) is None):
                server.register_resource(resource)
    for definition in catalogue.prompts:
        forwarded = _prompt(spec, definition, get)
        if forwarded is not None:
            _register(spec, forwarded.name, server.register_prompt, forwarded)


def _register(spec: UpstreamSpec, name: str, register: Callable[[Any], object], entry: object) -> None:
    # This upstream's own entries were removed first: a clash is with the app's own, which wins.
    try:
        register(entry)
    except ValueError:
        logger.warning(
            "upstream entry skipped: the app already has one by that name", upstream=spec.name, name=name
        )


def _owned(entry: object, upstream: str) -> bool:
    return getattr(entry, "upstream", None) == upstream
