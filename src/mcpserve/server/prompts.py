"""Prompt templates: arguments from the signature, messages from the return value."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from mcpserve.errors import InvalidParams
from mcpserve.server.content import Message, is_content, to_content
from mcpserve.server.context import Context
from mcpserve.server.invoke import invoke, is_async
from mcpserve.server.signature import FunctionSignature, describe_validation_error
from mcpserve.types import JSONObject

__all__ = ["Prompt", "to_messages"]


def _message(item: Any) -> JSONObject:
    if isinstance(item, Message):
        return item.to_wire()
    if isinstance(item, dict) and "role" in item and "content" in item:
        content = item["content"]
        return Message(content, item["role"]).to_wire() if not is_content(content) else item
    return Message(item).to_wire()


def to_messages(value: Any) -> list[JSONObject]:
    """Prompt messages for a handler's return value: text, blocks, messages, or a list of them."""
    if isinstance(value, list | tuple):
        return [_message(item) for item in value]
    if is_content(value) or isinstance(value, str):
        return [{"role": "user", "content": to_content(value)[0]}]
    return [_message(value)]


@dataclass(slots=True)
class Prompt:
    name: str
    fn: Callable[..., Any]
    signature: FunctionSignature
    asynchronous: bool
    definition: JSONObject
    scopes: frozenset[str]

    @classmethod
    def from_function(
        cls,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        title: str | None = None,
        description: str | None = None,
        icons: list[JSONObject] | None = None,
        scopes: frozenset[str] = frozenset(),
    ) -> Prompt:
        name = name or fn.__name__
        signature = FunctionSignature.of(fn, context_type=Context)
        prose = signature.prose
        arguments = []
        for arg, field in signature.model.model_fields.items():
            entry: JSONObject = {"name": arg, "required": field.is_required()}
            if field.description:
                entry["description"] = field.description
            arguments.append(entry)
        definition: JSONObject = {"name": name, "description": description or prose or name}
        if title:
            definition["title"] = title
        if arguments:
            definition["arguments"] = arguments
        if icons:
            definition["icons"] = icons
        return cls(name, fn, signature, is_async(fn), definition, scopes)

    async def render(self, arguments: JSONObject, context: Context) -> Any:
        try:
            kwargs = self.signature.bind(arguments, context)
        except ValidationError as exc:
            raise InvalidParams(
                f"Invalid arguments for prompt {self.name!r}: {describe_validation_error(exc)}"
            ) from None
        return await invoke(self.fn, self.asynchronous, kwargs)
