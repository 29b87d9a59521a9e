"""Tool definitions: schemas from type hints, argument validation, and result conversion."""

from __future__ import annotations

import logging
import re
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError

from mcpserve.errors import ToolError
from mcpserve.server.content import (
    Audio,
    EmbeddedResource,
    Image,
    ResourceLink,
    ToolAnnotations,
    ToolResult,
    to_content,
)
from mcpserve.server.context import Context, InputRequired
from mcpserve.server.failures import check_finite
from mcpserve.server.invoke import in_worker, is_async
from mcpserve.server.signature import (
    FunctionSignature,
    describe_validation_error,
    strip_titles,
)
from mcpserve.types import JSONObject

__all__ = ["Tool", "OutputSpec", "TOOL_NAME"]

logger = logging.getLogger("mcpserve.tools")
TOOL_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
_UNSTRUCTURED = (Image, Audio, EmbeddedResource, ResourceLink, ToolResult, InputRequired)
_NO_ANNOTATION: Any = object()  # distinct from a literal ``-> None``


@dataclass(slots=True, frozen=True)
class OutputSpec:
    """How a tool's return value becomes ``structuredContent``; ``wrapped`` nests it under "result"."""

    adapter: TypeAdapter[Any]
    schema: JSONObject
    wrapped: bool
    # ``str``, ``int`` or ``bool``: a value of exactly that type is already its own JSON form.
    exact: type | None = None


def _holds_content(annotation: Any) -> bool:
    """Whether a return annotation is, or contains, a content-block type (those stay unstructured)."""
    if isinstance(annotation, type) and issubclass(annotation, _UNSTRUCTURED):
        return True
    return any(_holds_content(a) for a in typing.get_args(annotation))


def output_spec(annotation: Any) -> OutputSpec | None:
    """An output schema for a return annotation, or None when the result is plain content."""
    if annotation in (_NO_ANNOTATION, typing.Any, None, type(None)) or _holds_content(annotation):
        return None
    # A bare ``list``/``tuple`` (or ``typing.List``) may hold content blocks: keep it unstructured.
    if annotation in (list, tuple) or (
        typing.get_origin(annotation) in (list, tuple) and not typing.get_args(annotation)
    ):
        return None
    adapter: TypeAdapter[Any] = TypeAdapter(annotation)
    try:
        schema = strip_titles(adapter.json_schema())
    except Exception:
        return None
    if schema.get("type") == "object":
        return OutputSpec(adapter, schema, wrapped=False)
    wrapped: JSONObject = {"type": "object", "properties": {"result": schema}, "required": ["result"]}
    if "$defs" in schema:
        wrapped["$defs"] = schema.pop("$defs")
    exact = annotation if annotation in (str, int, bool) else None
    return OutputSpec(adapter, wrapped, wrapped=True, exact=exact)


@dataclass(slots=True)
class Tool:
    """One registered tool."""

    name: str
    fn: Callable[..., Any]
    signature: FunctionSignature
    asynchronous: bool
    output: OutputSpec | None
    definition: JSONObject
    scopes: frozenset[str]
    timeout: float | None = None  # seconds; None: the dispatcher's default

    @classmethod
    def from_function(
        cls,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        title: str | None = None,
        description: str | None = None,
        annotations: ToolAnnotations | None = None,
        icons: list[JSONObject] | None = None,
        meta: JSONObject | None = None,
        structured_output: bool | None = None,
        scopes: frozenset[str] = frozenset(),
        timeout: float | None = None,
    ) -> Tool:
        name = name or fn.__name__
        if not TOOL_NAME.match(name):
            raise ValueError(f"Tool name {name!r} must be 1-128 characters of A-Z a-z 0-9 _ . -")
        if timeout is not None and not timeout > 0:
            raise ValueError(f"Tool {name!r}: timeout must be a positive number of seconds")
        signature = FunctionSignature.of(fn, context_type=Context)
        prose = signature.prose
        annotation = signature.hints.get("return", _NO_ANNOTATION)
        output = None if structured_output is False else output_spec(annotation)
        if structured_output and output is None:
            raise ValueError(f"Tool {name!r}: return annotation {annotation!r} cannot be structured output")
        definition: JSONObject = {"name": name}
        if title:
            definition["title"] = title
        definition["description"] = description or prose or name
        definition["inputSchema"] = signature.json_schema()
        if output:
            definition["outputSchema"] = output.schema
        if annotations:
            definition["annotations"] = annotations.to_wire()
        if icons:
            definition["icons"] = icons
        if meta:
            definition["_meta"] = meta
        return cls(name, fn, signature, is_async(fn), output, definition, scopes, timeout)

    def bind(self, arguments: JSONObject, context: Context | None) -> dict[str, Any]:
        """Validated keyword arguments; raises ToolError with a message the model can act on."""
        try:
            return self.signature.bind(arguments, context)
        except ValidationError as exc:
            raise ToolError(
                f"Invalid arguments for tool {self.name!r}: {describe_validation_error(exc)}"
            ) from None

    def run(self, kwargs: dict[str, Any]) -> Awaitable[Any]:
        # Awaited by the caller directly, no wrapper coroutine: the async tool's own coroutine,
        # or the future of a sync tool's run in a worker thread.
        return self.fn(**kwargs) if self.asynchronous else in_worker(self.fn, kwargs)

    def to_result(self, value: Any) -> JSONObject:
        """The ``CallToolResult`` for a return value (InputRequired is handled by the caller).

        A value that cannot go on the wire (not JSON, NaN, a malformed content block, structured
        content that breaks the output schema) raises ToolError: the model gets an ``isError``
        result naming the problem, the operator a log line, and the server keeps serving.
        """
        try:
            return self._result(value)
        except _Unsendable as exc:
            logger.warning("tool %s returned an unusable result: %s", self.name, exc.reason)
            raise ToolError(f"Tool {self.name!r} {exc.reason}") from None
        except (ValueError, TypeError) as exc:
            logger.warning("tool %s returned an unusable result (%s)", self.name, type(exc).__name__)
            raise ToolError(f"Tool {self.name!r} returned a value that cannot be sent as JSON") from None

    def _result(self, value: Any) -> JSONObject:
        if isinstance(value, ToolResult):
            result = value.to_wire()
            if "structuredContent" in result:
                if self.output is not None:
                    self._structured(result["structuredContent"], raw=False)
                else:
                    _finite(result["structuredContent"])
            return result
        if self.output is None:
            return {"content": to_content(value), "isError": False}
        json_value = self._structured(value, raw=True)
        structured = {"result": json_value} if self.output.wrapped else json_value
        text = value if isinstance(value, str) else orjson.dumps(json_value).decode()
        return {
            "content": [{"type": "text", "text": text}],
            "structuredContent": structured,
            "isError": False,
        }

    def _structured(self, value: Any, *, raw: bool) -> Any:
        """``value`` as JSON data checked against the output type; ``raw``: not yet wrapped."""
        assert self.output is not None
        if not raw and self.output.wrapped:
            if not isinstance(value, dict) or "result" not in value:
                raise _Unsendable("produced a result that does not match its declared output type")
            value = value["result"]
        if type(value) is self.output.exact:
            return value  # validating and dumping would return it unchanged
        try:
            json_value = self.output.adapter.dump_python(
                self.output.adapter.validate_python(value), mode="json"
            )
        except (ValidationError, ValueError, TypeError):
            raise _Unsendable("produced a result that does not match its declared output type") from None
        _finite(json_value)
        return json_value


def _finite(value: Any) -> None:
    try:
        check_finite(value)
    except ValueError:
        raise _Unsendable("returned a non-finite number (NaN or infinity), which JSON cannot carry") from None


class _Unsendable(Exception):
    """A tool result that cannot go on the wire; ``reason`` is safe to show the model."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
