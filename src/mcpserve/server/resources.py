"""Resources (fixed URIs) and resource templates (RFC 6570), and how their reads become contents."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from mcpserve.errors import InvalidParams
from mcpserve.protocol.uritemplate import UriTemplate
from mcpserve.server.context import Context
from mcpserve.server.invoke import invoke, is_async
from mcpserve.server.signature import FunctionSignature, describe_validation_error
from mcpserve.types import JSONObject

__all__ = ["Resource", "ResourceContents", "to_contents"]


@dataclass(slots=True, frozen=True)
class ResourceContents:
    """Contents already in wire form (a forwarded read), passed on as they are."""

    items: list[JSONObject]


def to_contents(uri: str, value: Any, mime_type: str | None) -> list[JSONObject]:
    """``resources/read`` contents for a handler's return value."""
    if isinstance(value, ResourceContents):
        return value.items
    if isinstance(value, bytes):
        item: JSONObject = {"uri": uri, "blob": base64.b64encode(value).decode()}
        item["mimeType"] = mime_type or "application/octet-stream"
        return [item]
    if isinstance(value, str):
        return [{"uri": uri, "mimeType": mime_type or "text/plain", "text": value}]
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", by_alias=True)
    text = orjson.dumps(value, default=str).decode()
    return [{"uri": uri, "mimeType": mime_type or "application/json", "text": text}]


@dataclass(slots=True)
class Resource:
    """A fixed resource (``template`` is None) or an RFC 6570 resource template."""

    uri: str  # the fixed URI, or the template as registered
    template: UriTemplate | None
    fn: Callable[..., Any]
    signature: FunctionSignature
    asynchronous: bool
    mime_type: str | None
    definition: JSONObject
    scopes: frozenset[str]

    @classmethod
    def from_function(
        cls,
        fn: Callable[..., Any],
        uri: str,
        *,
        name: str | None = None,
        title: str | None = None,
        description: str | None = None,
        mime_type: str | None = None,
        annotations: JSONObject | None = None,
        scopes: frozenset[str] = frozenset(),
    ) -> Resource:
        """A template when ``uri`` has ``{variables}``: they must be the handler's parameters."""
        signature = FunctionSignature.of(fn, context_type=Context)
        template = UriTemplate.parse(uri) if "{" in uri else None
        if template is None and signature.param_names:
            raise ValueError(
                f"Resource {uri!r} has no URI template variables, but its handler takes "
                f"{', '.join(signature.param_names)}; add {{...}} variables or drop the parameters"
            )
        if template is not None and set(template.variable_names) != set(signature.param_names):
            raise ValueError(
                f"Resource template {uri!r}: URI variables {sorted(template.variable_names)} "
                f"must match the handler's parameters {sorted(signature.param_names)}"
            )
        definition: JSONObject = {"uriTemplate" if template else "uri": uri, "name": name or fn.__name__}
        if title:
            definition["title"] = title
        if description or signature.prose:
            definition["description"] = description or signature.prose
        if mime_type:
            definition["mimeType"] = mime_type
        if annotations:
            definition["annotations"] = (
                annotations if isinstance(annotations, dict) else annotations.to_wire()
            )
        return cls(uri, template, fn, signature, is_async(fn), mime_type, definition, scopes)

    def match(self, uri: str) -> dict[str, Any] | None:
        """The template variables ``uri`` gives, or None (a fixed resource matches nothing here)."""
        return self.template.match(uri) if self.template is not None else None

    async def read(self, variables: dict[str, Any], context: Context) -> Any:
        try:
            kwargs = self.signature.bind(variables, context)
        except ValidationError as exc:
            raise InvalidParams(f"Invalid resource URI: {describe_validation_error(exc)}") from None
        return await invoke(self.fn, self.asynchronous, kwargs)
