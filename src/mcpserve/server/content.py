"""Content blocks and result shapes a handler may return, and their conversion to the wire."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import to_jsonable_python

from mcpserve.types import JSONObject

__all__ = [
    "Image",
    "Audio",
    "EmbeddedResource",
    "ResourceLink",
    "ToolResult",
    "ToolAnnotations",
    "Message",
    "UserMessage",
    "AssistantMessage",
    "to_content",
    "is_content",
    "CONTENT_TYPES",
]

CONTENT_TYPES = frozenset({"text", "image", "audio", "resource", "resource_link"})


@dataclass(slots=True, frozen=True)
class Image:
    """Binary image content; ``data`` is raw bytes, encoded to base64 on the wire."""

    data: bytes
    mime_type: str = "image/png"

    def to_content(self) -> JSONObject:
        return {"type": "image", "data": base64.b64encode(self.data).decode(), "mimeType": self.mime_type}


@dataclass(slots=True, frozen=True)
class Audio:
    data: bytes
    mime_type: str = "audio/wav"

    def to_content(self) -> JSONObject:
        return {"type": "audio", "data": base64.b64encode(self.data).decode(), "mimeType": self.mime_type}


@dataclass(slots=True, frozen=True)
class EmbeddedResource:
    """A resource's contents embedded in a result: text, or bytes sent as a base64 blob."""

    uri: str
    content: str | bytes
    mime_type: str | None = None

    def to_content(self) -> JSONObject:
        resource: JSONObject = {"uri": self.uri}
        if self.mime_type:
            resource["mimeType"] = self.mime_type
        if isinstance(self.content, bytes):
            resource["blob"] = base64.b64encode(self.content).decode()
        else:
            resource["text"] = self.content
        return {"type": "resource", "resource": resource}


@dataclass(slots=True, frozen=True)
class ResourceLink:
    uri: str
    name: str
    description: str | None = None
    mime_type: str | None = None

    def to_content(self) -> JSONObject:
        link: JSONObject = {"type": "resource_link", "uri": self.uri, "name": self.name}
        if self.description:
            link["description"] = self.description
        if self.mime_type:
            link["mimeType"] = self.mime_type
        return link


_Block = Image | Audio | EmbeddedResource | ResourceLink


# The string members each kind of content block must carry ("resource" is checked on its own).
_REQUIRED: dict[str, tuple[str, ...]] = {
    "text": ("text",),
    "image": ("data", "mimeType"),
    "audio": ("data", "mimeType"),
    "resource_link": ("uri", "name"),
}


def _checked(block: JSONObject) -> JSONObject:
    """A content block given as a dict, once its required members have the right types."""
    kind = block["type"]
    if kind == "resource":
        resource = block.get("resource")
        if not (
            isinstance(resource, dict)
            and isinstance(resource.get("uri"), str)
            and (isinstance(resource.get("text"), str) or isinstance(resource.get("blob"), str))
        ):
            raise ValueError("a resource content block needs resource.uri and a string text or blob")
        return block
    for key in _REQUIRED[kind]:
        if not isinstance(block.get(key), str):
            raise ValueError(f"a {kind} content block needs a string {key!r}")
    return block


def is_content(value: object) -> bool:
    if isinstance(value, _Block):
        return True
    return isinstance(value, dict) and value.get("type") in CONTENT_TYPES


def to_content(value: Any) -> list[JSONObject]:
    """Content blocks for any handler return value. Non-content values become JSON text."""
    if value is None:
        return []
    if isinstance(value, str):
        return [{"type": "text", "text": value}]
    if isinstance(value, _Block):
        return [value.to_content()]
    if isinstance(value, dict) and value.get("type") in CONTENT_TYPES:
        return [_checked(value)]
    if isinstance(value, list | tuple) and value and all(is_content(v) or isinstance(v, str) for v in value):
        return [block for item in value for block in to_content(item)]
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", by_alias=True)
    # Values orjson cannot encode natively (Decimal, Path, set, ...) go through pydantic's JSON
    # conversion; anything it does not know either raises ValueError instead of leaking a repr.
    return [{"type": "text", "text": orjson.dumps(value, default=to_jsonable_python).decode()}]


@dataclass(slots=True)
class ToolResult:
    """Full control over a tool result: content blocks, structured content, and the error flag."""

    content: Sequence[Any] = ()
    structured_content: Any = None
    is_error: bool = False
    meta: JSONObject | None = field(default=None)

    def to_wire(self) -> JSONObject:
        result: JSONObject = {"content": to_content(list(self.content)), "isError": self.is_error}
        if self.structured_content is not None:
            result["structuredContent"] = to_jsonable_python(self.structured_content)
        if self.meta:
            result["_meta"] = self.meta
        return result


class ToolAnnotations(BaseModel):
    """Hints about a tool's behaviour. Clients treat them as untrusted."""

    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="forbid")

    title: str | None = None
    read_only_hint: bool | None = Field(default=None, alias="readOnlyHint")
    destructive_hint: bool | None = Field(default=None, alias="destructiveHint")
    idempotent_hint: bool | None = Field(default=None, alias="idempotentHint")
    open_world_hint: bool | None = Field(default=None, alias="openWorldHint")

    def to_wire(self) -> JSONObject:
        return self.model_dump(by_alias=True, exclude_none=True)


@dataclass(slots=True, frozen=True)
class Message:
    """One prompt message. ``content`` is text or a content block."""

    content: Any
    role: Literal["user", "assistant"] = "user"

    def to_wire(self) -> JSONObject:
        blocks = to_content(self.content)
        return {"role": self.role, "content": blocks[0] if blocks else {"type": "text", "text": ""}}


def UserMessage(content: Any) -> Message:
    return Message(content, "user")


def AssistantMessage(content: Any) -> Message:
    return Message(content, "assistant")
