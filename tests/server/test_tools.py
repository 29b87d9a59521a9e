"""Tools: schemas from type hints and docstrings, annotations, output schemas, content, errors."""

from __future__ import annotations

import base64
import decimal
import pathlib
import threading
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any, Literal

import anyio
import pytest
from pydantic import BaseModel, Field

from mcpserve import (
    Audio,
    Context,
    EmbeddedResource,
    Image,
    MCPServer,
    ResourceLink,
    ToolAnnotations,
    ToolError,
    ToolResult,
)
from mcpserve.principal import Principal
from mcpserve.server.content import to_content
from mcpserve.server.tools import Tool
from tests.server.support import build_server, dispatcher, modern, result_of, text_of

pytestmark = pytest.mark.anyio


class Color(StrEnum):
    RED = "red"
    BLUE = "blue"


class Address(BaseModel):
    street: str
    zip_code: str = Field(description="Postal code")


def _definition(fn: Any, **options: Any) -> dict[str, Any]:
    return Tool.from_function(fn, **options).definition


async def _call(server: MCPServer, name: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {"name": name}
    if arguments is not None:
        params["arguments"] = arguments
    return result_of(await dispatcher(server).handle(modern("tools/call", params)))


# -- definitions ---------------------------------------------------------------------------------


def test_input_schema_comes_from_type_hints_defaults_and_docstring() -> None:
    def search(
        query: str, limit: int = 10, tags: list[str] | None = None, mode: Literal["fast", "exact"] = "fast"
    ) -> list[str]:
        """Search the catalogue.

        Longer explanation that stays in the description.

        Args:
            query: Words to look for. They may span
                several lines.
            limit (int): Maximum number of hits.
            tags: Only items with all these tags.

        Returns:
            Matching item names.
        """
        return []

    definition = _definition(search)
    assert definition["name"] == "search"
    assert definition["description"].startswith("Search the catalogue.\n\nLonger explanation")
    assert "Words to look for" not in definition["description"]
    schema = definition["inputSchema"]
    assert schema["type"] == "object"
    assert schema["required"] == ["query"]
    assert schema["properties"]["query"] == {
        "type": "string",
        "description": "Words to look for. They may span several lines.",
    }
    assert schema["properties"]["limit"] == {
        "type": "integer",
        "default": 10,
        "description": "Maximum number of hits.",
    }
    assert schema["properties"]["tags"]["default"] is None
    assert schema["properties"]["tags"]["description"] == "Only items with all these tags."
    assert schema["properties"]["mode"] == {"enum": ["fast", "exact"], "type": "string", "default": "fast"}
    assert schema["additionalProperties"] is False
    assert "title" not in schema
    assert definition["outputSchema"] == {
        "type": "object",
        "properties": {"result": {"type": "array", "items": {"type": "string"}}},
        "required": ["result"],
    }


def test_annotated_field_descriptions_and_constraints_win_over_the_docstring() -> None:
    def pick(count: Annotated[int, Field(ge=1, le=5, description="How many")] = 1) -> None:
        """Pick.

        Args:
            count: Docstring text that loses.
        """

    schema = _definition(pick)["inputSchema"]
    assert schema["properties"]["count"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 5,
        "description": "How many",
        "default": 1,
    }
    assert "required" not in schema


def test_no_parameter_tool_has_a_closed_empty_object_schema_and_context_is_hidden() -> None:
    async def ping(ctx: Context) -> None:
        return None

    definition = _definition(ping)
    assert definition["inputSchema"] == {"type": "object", "properties": {}, "additionalProperties": False}
    assert "outputSchema" not in definition
    assert definition["description"] == "ping"


def test_nested_models_and_enums_appear_in_the_schema() -> None:
    def ship(address: Address, color: Color = Color.RED) -> None:
        """Ship it."""

    schema = _definition(ship)["inputSchema"]
    assert schema["properties"]["address"] == {"$ref": "#/$defs/Address"}
    assert schema["$defs"]["Address"]["properties"]["zip_code"]["description"] == "Postal code"
    assert schema["$defs"]["Color"]["enum"] == ["red", "blue"]


def test_optional_definition_fields_are_emitted_in_wire_form() -> None:
    def deploy(env: str) -> str:
        return env

    annotations = ToolAnnotations(
        title="Deploy",
        read_only_hint=False,
        destructive_hint=True,
        idempotent_hint=False,
        open_world_hint=True,
    )
    definition = _definition(
        deploy,
        name="deploy.v2",
        title="Deploy service",
        description="Explicit description",
        annotations=annotations,
        icons=[{"src": "https://example.com/i.png", "mimeType": "image/png"}],
        meta={"com.example/owner": "ops"},
    )
    assert definition["name"] == "deploy.v2"
    assert definition["title"] == "Deploy service"
    assert definition["description"] == "Explicit description"
    assert definition["annotations"] == {
        "title": "Deploy",
        "readOnlyHint": False,
        "destructiveHint": True,
        "idempotentHint": False,
        "openWorldHint": True,
    }
    assert definition["icons"] == [{"src": "https://example.com/i.png", "mimeType": "image/png"}]
    assert definition["_meta"] == {"com.example/owner": "ops"}


def test_unset_annotation_hints_are_left_out() -> None:
    assert ToolAnnotations(read_only_hint=True).to_wire() == {"readOnlyHint": True}
    assert ToolAnnotations.model_validate({"readOnlyHint": True}) == ToolAnnotations(read_only_hint=True)


@pytest.mark.parametrize(
    ("annotation", "expected"),
    [
        (int, {"type": "object", "properties": {"result": {"type": "integer"}}, "required": ["result"]}),
        (str, {"type": "object", "properties": {"result": {"type": "string"}}, "required": ["result"]}),
        (dict[str, int], {"type": "object", "additionalProperties": {"type": "integer"}}),
        (Address, None),
        (list, None),
        (tuple, None),
        (Any, None),
        (None, None),
        (
            list[Any],
            {
                "type": "object",
                "properties": {"result": {"type": "array", "items": {}}},
                "required": ["result"],
            },
        ),
        (dict[str, Any], {"type": "object", "additionalProperties": True}),
        (Image, None),
        (list[Image], None),
        (Image | str, None),
        (Annotated[Image, "x"], None),
        (ToolResult, None),
        (Callable[[], int], None),
    ],
)
def test_output_schema_follows_the_return_annotation(
    annotation: Any, expected: dict[str, Any] | None
) -> None:
    def fn() -> None:
        return None

    fn.__annotations__["return"] = annotation
    definition = _definition(fn)
    if annotation is Address:
        assert definition["outputSchema"]["properties"]["street"] == {"type": "string"}
        assert definition["outputSchema"]["required"] == ["street", "zip_code"]
    elif expected is None:
        assert "outputSchema" not in definition
    else:
        assert definition["outputSchema"] == expected


def test_output_schema_with_definitions_keeps_them_at_the_top() -> None:
    def addresses() -> list[Address]:
        return []

    schema = _definition(addresses)["outputSchema"]
    assert schema["properties"]["result"] == {"type": "array", "items": {"$ref": "#/$defs/Address"}}
    assert "Address" in schema["$defs"]


def test_structured_output_can_be_switched_off_and_cannot_be_forced_on_content() -> None:
    def count() -> int:
        return 1

    def picture() -> Image:
        return Image(b"")

    assert "outputSchema" not in _definition(count, structured_output=False)
    with pytest.raises(ValueError, match="cannot be structured output"):
        Tool.from_function(picture, structured_output=True)


def test_no_return_annotation_means_no_output_schema() -> None:
    def untyped():  # type: ignore[no-untyped-def]
        return 1

    assert "outputSchema" not in _definition(untyped)


@pytest.mark.parametrize("name", ["has space", "slash/name", "x" * 129, "ünï"])
def test_invalid_tool_names_are_refused(name: str) -> None:
    def fn() -> None:
        return None

    with pytest.raises(ValueError, match="must be 1-128 characters"):
        Tool.from_function(fn, name=name)


def test_registration_errors_are_reported_at_definition_time() -> None:
    server = MCPServer()

    @server.tool()
    def once() -> None:
        return None

    with pytest.raises(ValueError, match="already registered"):
        server.add_tool(once)
    with pytest.raises(TypeError, match="parentheses"):
        server.tool(once)  # type: ignore[arg-type]

    def variadic(*args: int) -> None:
        return None

    with pytest.raises(TypeError, match=r"\*args and \*\*kwargs"):
        server.add_tool(variadic)
    server.remove_tool("once")
    assert server.visible_tools(None) == []
    with pytest.raises(KeyError):
        server.remove_tool("once")


def test_a_scoped_tool_is_registered_for_everyone_but_found_only_by_callers_with_its_scopes() -> None:
    server = build_server()
    hidden = server.registered_tool("admin_only")  # metrics labels and header checks use this
    assert hidden is not None and hidden.scopes == {"admin"}
    assert server.find_tool("admin_only", Principal("bob")) is None
    assert server.find_tool("admin_only", Principal("root", frozenset({"admin"}))) is hidden
    assert server.registered_tool("nope") is None


# -- results ---------------------------------------------------------------------------------------


async def test_structured_result_has_structured_content_and_a_json_text_block() -> None:
    result = await _call(build_server(), "add", {"a": 2, "b": 3})
    assert result["structuredContent"] == {"result": 5}
    assert text_of(result) == "5"
    assert result["isError"] is False


async def test_string_result_text_is_the_string_itself() -> None:
    result = await _call(build_server(), "greet", {"name": "Ada", "excited": True})
    assert text_of(result) == "Hello, Ada!"
    assert result["structuredContent"] == {"result": "Hello, Ada!"}


async def test_model_result_is_unwrapped_structured_content() -> None:
    result = await _call(build_server(), "weather", {"city": "Oslo"})
    assert result["structuredContent"] == {"city": "Oslo", "celsius": 21.5}
    assert text_of(result) == '{"city":"Oslo","celsius":21.5}'


@pytest.mark.parametrize(
    ("arguments", "fragments"),
    [
        ({"a": "two", "b": 3}, ["Invalid arguments for tool 'add'", "a: Input should be a valid integer"]),
        ({"a": 2}, ["b: Field required"]),
        ({"a": 2, "b": 3, "c": 4}, ["c: Extra inputs are not permitted"]),
        (None, ["a: Field required", "b: Field required"]),
    ],
)
async def test_bad_arguments_are_an_error_result_the_model_can_act_on(
    arguments: dict[str, Any] | None, fragments: list[str]
) -> None:
    result = await _call(build_server(), "add", arguments)
    assert result["isError"] is True
    text = text_of(result)
    for fragment in fragments:
        assert fragment in text
    assert "two" not in text  # the input itself is never echoed


async def test_bad_value_for_a_constrained_argument_is_an_error_result() -> None:
    result = await _call(build_server(), "greet", {"name": ""})
    assert result["isError"] is True
    assert "name: String should have at least 1 character" in text_of(result)


async def test_unknown_tool_is_an_error_result_not_a_protocol_error() -> None:
    result = await _call(build_server(), "nope", {})
    assert result == {
        "content": [{"type": "text", "text": "Unknown tool: 'nope'"}],
        "isError": True,
        "resultType": "complete",
        "_meta": result["_meta"],
    }


async def test_tool_error_message_reaches_the_model() -> None:
    result = await _call(build_server(), "refuse")
    assert result["isError"] is True
    assert text_of(result) == "The upstream refused: quota exhausted, retry after 60 s"


async def test_unexpected_exception_is_an_error_result_with_an_error_id_and_no_details(
    caplog: pytest.LogCaptureFixture,
) -> None:
    result = await _call(build_server(), "crash")
    assert result["isError"] is True
    text = text_of(result)
    assert text.startswith("Tool 'crash' failed: Internal error (error id ")
    for leak in ("boom", "/srv/secret", "Traceback", "RuntimeError", ".py"):
        assert leak not in text
    error_id = text.rsplit("error id ", 1)[1].rstrip(")")
    assert any(error_id in record.getMessage() and record.exc_info for record in caplog.records)


async def test_result_that_does_not_match_the_declared_output_type_is_an_error_result() -> None:
    result = await _call(build_server(), "garbage")
    assert result["isError"] is True
    assert text_of(result) == "Tool 'garbage' produced a result that does not match its declared output type"
    assert "structuredContent" not in result


async def test_tool_that_never_finishes_times_out_as_an_error_result() -> None:
    d = dispatcher(tool_timeout=0.1)
    with anyio.fail_after(5):
        result = result_of(await d.handle(modern("tools/call", {"name": "wait_forever"})))
    assert result["isError"] is True
    assert text_of(result) == "Tool 'wait_forever' timed out after 0.1 s; the upstream did not answer in time"


async def test_tool_raising_its_own_timeout_error_is_a_failure_not_a_timeout() -> None:
    server = MCPServer()

    @server.tool()
    async def upstream() -> str:
        raise TimeoutError("upstream socket timed out")

    result = result_of(
        await dispatcher(server, tool_timeout=30).handle(modern("tools/call", {"name": "upstream"}))
    )
    assert result["isError"] is True
    assert text_of(result).startswith("Tool 'upstream' failed: Internal error (error id ")


async def test_no_tool_timeout_means_no_deadline() -> None:
    result = result_of(
        await dispatcher(tool_timeout=None).handle(
            modern("tools/call", {"name": "add", "arguments": {"a": 1, "b": 2}})
        )
    )
    assert result["structuredContent"] == {"result": 3}


async def test_sync_tools_run_in_a_worker_thread() -> None:
    server = MCPServer()
    loop_thread = threading.get_ident()

    @server.tool()
    def where() -> bool:
        return threading.get_ident() != loop_thread

    assert (await _call(server, "where"))["structuredContent"] == {"result": True}


async def test_content_blocks_are_converted_to_the_wire() -> None:
    server = MCPServer()

    @server.tool()
    def picture() -> Image:
        return Image(b"\x89PNG", "image/png")

    @server.tool()
    def sound() -> Audio:
        return Audio(b"RIFF")

    @server.tool()
    def embedded_text() -> EmbeddedResource:
        return EmbeddedResource("file:///notes.md", "# Notes", "text/markdown")

    @server.tool()
    def embedded_blob() -> EmbeddedResource:
        return EmbeddedResource("file:///data.bin", b"\x00\x01")

    @server.tool()
    def link() -> ResourceLink:
        return ResourceLink("file:///big.csv", "big.csv", "A large file", "text/csv")

    @server.tool()
    def bare_link() -> ResourceLink:
        return ResourceLink("file:///x", "x")

    @server.tool()
    def mixed() -> list[str | Image | dict[str, str]]:
        return ["caption", Image(b"GIF89a", "image/gif"), {"type": "text", "text": "raw block"}]

    assert (await _call(server, "picture"))["content"] == [
        {"type": "image", "data": base64.b64encode(b"\x89PNG").decode(), "mimeType": "image/png"}
    ]
    assert (await _call(server, "sound"))["content"] == [
        {"type": "audio", "data": base64.b64encode(b"RIFF").decode(), "mimeType": "audio/wav"}
    ]
    assert (await _call(server, "embedded_text"))["content"] == [
        {
            "type": "resource",
            "resource": {"uri": "file:///notes.md", "mimeType": "text/markdown", "text": "# Notes"},
        }
    ]
    assert (await _call(server, "embedded_blob"))["content"] == [
        {
            "type": "resource",
            "resource": {"uri": "file:///data.bin", "blob": base64.b64encode(b"\x00\x01").decode()},
        }
    ]
    assert (await _call(server, "link"))["content"] == [
        {
            "type": "resource_link",
            "uri": "file:///big.csv",
            "name": "big.csv",
            "description": "A large file",
            "mimeType": "text/csv",
        }
    ]
    assert (await _call(server, "bare_link"))["content"] == [
        {"type": "resource_link", "uri": "file:///x", "name": "x"}
    ]
    blocks = await _call(server, "mixed")
    assert [block["type"] for block in blocks["content"]] == ["text", "image", "text"]
    assert blocks["content"][2] == {"type": "text", "text": "raw block"}
    assert "structuredContent" not in blocks


async def test_tool_result_gives_full_control_including_the_error_flag() -> None:
    server = MCPServer()

    @server.tool()
    def custom() -> ToolResult:
        return ToolResult(
            ["partial output"], structured_content=[1, 2], is_error=True, meta={"com.example/x": 1}
        )

    result = await _call(server, "custom")
    assert result["content"] == [{"type": "text", "text": "partial output"}]
    assert result["structuredContent"] == [1, 2]
    assert result["isError"] is True
    assert result["_meta"]["com.example/x"] == 1


async def test_unstructured_return_values_become_json_text() -> None:
    server = MCPServer()

    @server.tool()
    def anything() -> Any:
        return {"when": decimal.Decimal("1.50"), "where": pathlib.Path("/srv")}

    @server.tool()
    def model() -> Any:
        return Address(street="Main St", zip_code="12345")

    @server.tool()
    def nothing() -> None:
        return None

    assert text_of(await _call(server, "anything")) == '{"when":"1.50","where":"/srv"}'
    assert text_of(await _call(server, "model")) == '{"street":"Main St","zip_code":"12345"}'
    assert (await _call(server, "nothing"))["content"] == []


def test_to_content_handles_empty_and_mixed_sequences() -> None:
    assert to_content([]) == [{"type": "text", "text": "[]"}]
    assert to_content((1, 2)) == [{"type": "text", "text": "[1,2]"}]
    assert to_content(["a", "b"]) == [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
    assert to_content({"type": "unknown"}) == [{"type": "text", "text": '{"type":"unknown"}'}]


async def test_tool_error_raised_with_context_still_reaches_the_model() -> None:
    server = MCPServer()

    @server.tool()
    async def check(n: int, ctx: Context) -> str:
        await ctx.info("checking")
        if n < 0:
            raise ToolError(f"n must be non-negative, got {n}")
        return "ok"

    assert text_of(await _call(server, "check", {"n": -1})) == "n must be non-negative, got -1"
