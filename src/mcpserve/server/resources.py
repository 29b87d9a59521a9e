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
from mcpserve.server.content import ToolAnnotations
from mcpserve.server.context import Context
from mcpserve.server.invoke import invoke, is_async
from mcpserve.server.signature import FunctionSignature, describe_validation_error, split_docstring
from mcpserve.types import JSONObject

__all__ = ["Resource", "ResourceTemplate", "to_contents"]


def to_contents(uri: str, value: Any, mime_type: str | None) -> list[JSONObject]:
    """``resources/read`` contents for a handler's return value."""
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


def _describe(
    fn: Callable[..., Any],
    base: JSONObject,
    title: str | None,
    description: str | None,
    mime_type: str | None,
    annotations: ToolAnnotations | JSONObject | None,
) -> JSONObject:
    if title:
        base["title"] = title
    prose, _ = split_docstring(fn)
    if description or prose:
        base["description"] = description or prose
    if mime_type:
        base["mimeType"] = mime_type
    if annotations:
        base["annotations"] = annotations if isinstance(annotations, dict) else annotations.to_wire()
    return base


@dataclass(slots=True)
class Resource:
    uri: str
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
        signature = FunctionSignature.of(fn, context_type=Context)
        if signature.param_names:
            raise ValueError(
                f"Resource {uri!r} has no URI template variables, but its handler takes "
                f"{', '.join(signature.param_names)}; add {{...}} variables or drop the parameters"
            )
        definition = _describe(
            fn, {"uri": uri, "name": name or fn.__name__}, title, description, mime_type, annotations
        )
        return cls(uri, fn, signature, is_async(fn), mime_type, definition, scopes)

    async def read(self, context: Context) -> Any:
        kwargs: dict[str, Any] = {}
        if self.signature.context_param:
            kwargs[self.signature.context_param] = context
        return await invoke(self.fn, self.asynchronous, kwargs)


@dataclass(slots=True)
class ResourceTemplate:
    template: UriTemplate
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
        uri_template: str,
        *,
        name: str | None = None,
        title: str | None = None,
        description: str | None = None,
        mime_type: str | None = None,
        annotations: JSONObject | None = None,
        scopes: frozenset[str] = frozenset(),
    ) -> ResourceTemplate:
        template = UriTemplate.parse(uri_template)
        signature = FunctionSignature.of(fn, context_type=Context)
        if set(template.variable_names) != set(signature.param_names):
            raise ValueError(
                f"Resource template {uri_template!r}: URI variables {sorted(template.variable_names)} "
                f"must match the handler's parameters {sorted(signature.param_names)}"
            )
        base = {"uriTemplate": uri_template, "name": name or fn.__name__}
        definition = _describe(fn, base, title, description, mime_type, annotations)
        return cls(template, fn, signature, is_async(fn), mime_type, definition, scopes)

    def match(self, uri: str) -> dict[str, Any] | None:
        return self.template.match(uri)

    async def read(self, variables: dict[str, Any], context: Context) -> Any:
        try:
            kwargs = self.signature.bind(variables)
        except ValidationError as exc:
            raise InvalidParams(f"Invalid resource URI: {describe_validation_error(exc)}") from None
        if self.signature.context_param:
            kwargs[self.signature.context_param] = context
        return await invoke(self.fn, self.asynchronous, kwargs)
