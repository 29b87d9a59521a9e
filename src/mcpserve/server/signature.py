"""Turn a Python function's signature into a validated argument model and a JSON Schema.

Tools, resource templates and prompts all take named arguments from the wire. One pydantic
model per function validates them; its schema, with descriptions taken from ``Annotated``
fields or the docstring's ``Args:`` section, is what clients see.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, get_type_hints

from pydantic import BaseModel, ConfigDict, ValidationError, create_model
from pydantic.fields import FieldInfo

from mcpserve.types import JSONObject

__all__ = ["FunctionSignature", "describe_validation_error", "split_docstring", "strip_titles"]

_ARGS_HEADER = re.compile(r"^(Args|Arguments|Parameters):\s*$")
_ARG_LINE = re.compile(r"^(\s+)\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")


def split_docstring(fn: Callable[..., Any]) -> tuple[str | None, dict[str, str]]:
    """The docstring's prose (without a Google-style ``Args:`` section) and per-argument descriptions."""
    doc = inspect.getdoc(fn)
    if not doc:
        return None, {}
    prose: list[str] = []
    params: dict[str, str] = {}
    in_args, indent, current = False, "", ""
    for line in doc.splitlines():
        if _ARGS_HEADER.match(line):
            in_args, indent, current = True, "", ""
            continue
        if in_args and line.strip() and not line[0].isspace():
            in_args = False  # an unindented line ends the section
        if not in_args:
            prose.append(line)
            continue
        arg = _ARG_LINE.match(line)
        if arg and (not indent or arg.group(1) == indent):
            indent, current = arg.group(1), arg.group(2)
            params[current] = arg.group(3).strip()
        elif current and line.strip():
            params[current] = f"{params[current]} {line.strip()}".strip()
    text = "\n".join(prose).strip()
    return (text or None), params


def describe_validation_error(exc: ValidationError) -> str:
    """A short, model-actionable summary of what was wrong with the arguments (no input echo)."""
    parts = []
    for error in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(p) for p in error["loc"]) or "arguments"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def strip_titles(schema: Any) -> Any:
    """Drop pydantic's auto-generated titles: they repeat the property names and cost tokens."""
    if isinstance(schema, dict):
        properties = schema.get("properties")
        cleaned = {k: strip_titles(v) for k, v in schema.items() if k != "title"}
        if isinstance(properties, dict):
            cleaned["properties"] = {name: strip_titles(v) for name, v in properties.items()}
        return cleaned
    if isinstance(schema, list):
        return [strip_titles(item) for item in schema]
    return schema


@dataclass(slots=True)
class FunctionSignature:
    """Argument model for one function, with the parameter (if any) that receives the Context."""

    model: type[BaseModel]
    context_param: str | None
    param_names: tuple[str, ...]
    prose: str | None  # the docstring without its ``Args:`` section
    hints: dict[str, Any]

    @classmethod
    def of(cls, fn: Callable[..., Any], *, context_type: type) -> FunctionSignature:
        hints = get_type_hints(fn, include_extras=True)
        prose, descriptions = split_docstring(fn)
        fields: dict[str, Any] = {}
        context_param = None
        for name, param in inspect.signature(fn).parameters.items():
            annotation = hints.get(name, Any)
            if isinstance(annotation, type) and issubclass(annotation, context_type):
                context_param = name
                continue
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                raise TypeError(f"{fn.__name__}: *args and **kwargs cannot be described to clients")
            default = ... if param.default is inspect.Parameter.empty else param.default
            field = FieldInfo.merge_field_infos(FieldInfo.from_annotated_attribute(annotation, default))
            if field.description is None and name in descriptions:
                field.description = descriptions[name]
            fields[name] = (field.annotation, field)
        model = create_model(
            f"{fn.__name__}_arguments",
            __config__=ConfigDict(extra="forbid", arbitrary_types_allowed=True),
            **fields,
        )
        return cls(model, context_param, tuple(fields), prose, hints)

    def json_schema(self) -> JSONObject:
        schema: JSONObject = strip_titles(self.model.model_json_schema())
        schema.setdefault("properties", {})
        schema["type"] = "object"
        if not schema["properties"]:
            schema["additionalProperties"] = False
        return schema

    def bind(self, arguments: JSONObject, context: Any) -> dict[str, Any]:
        """Validated keyword arguments, plus ``context`` when the function takes one.

        Raises pydantic's ValidationError; each caller words it for its kind of handler.
        """
        # The validator itself: model_validate adds a Python call around it. The instance is
        # fresh and dropped here, so its __dict__ (exactly the fields: extra="forbid") is ours.
        kwargs: dict[str, Any] = self.model.__pydantic_validator__.validate_python(arguments).__dict__
        if self.context_param:
            kwargs[self.context_param] = context
        return kwargs
