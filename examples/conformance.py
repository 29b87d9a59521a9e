"""Fixture application for the official MCP conformance suite (both protocol eras).

The suite calls fixed tool, resource and prompt names; this app exposes all of them through
mcpserve's public API so that one process passes ``--requirements 2026-07-28``,
``--requirements 2025-11-25`` and the 0.1.16 ``--suite all`` run::

    mcpserve serve examples/conformance.py --transport http --host 127.0.0.1 --port 3111
    # endpoint: http://127.0.0.1:3111/mcp

Not a demo of good tool design: names, texts and shapes follow the suite's scenario
descriptions verbatim, because the suite compares them literally. The first tool takes no
arguments (http-header-validation calls the first listed tool with ``{}``). The ``tasks-*``
extension scenarios are not covered (mcpserve does not implement the tasks extension); the
suite runs them but never scores them. ``tests/interop/test_conformance.py`` runs all three.
"""

from __future__ import annotations

import base64
import io
import wave
from typing import Annotated, Any, Literal

import anyio
from pydantic import BaseModel, Field

from mcpserve import (
    Audio,
    Completion,
    CompletionArgument,
    CompletionContext,
    Context,
    EmbeddedResource,
    Image,
    InputRequired,
    MCPServer,
    Message,
    PromptReference,
    ResourceTemplateReference,
    ToolError,
    UserMessage,
)
from mcpserve.types import JSONObject

__all__ = ["app"]

# A 1x1 transparent PNG.
PNG_1X1 = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


def _silent_wav(frames: int = 8) -> bytes:
    """A tiny valid WAV file: mono, 16-bit, 8 kHz, silence."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x00\x00" * frames)
    return buffer.getvalue()


WAV_SILENCE = _silent_wav()

STEP_DELAY = 0.05  # seconds between the progress/log notifications the suite expects

app = MCPServer(
    "mcpserve-conformance",
    title="mcpserve conformance fixture",
    instructions="Fixture server for the MCP conformance suite. Not for production use.",
)


# -- answers the 2026-07-28 input_required tools ask for ------------------------------------------
class NameAnswer(BaseModel):
    name: str


class ColorAnswer(BaseModel):
    color: str


class PromptContextAnswer(BaseModel):
    context: str


def _elicitation(message: str, properties: JSONObject, required: list[str]) -> JSONObject:
    schema: JSONObject = {"type": "object", "properties": properties, "required": required}
    return {"method": "elicitation/create", "params": {"message": message, "requestedSchema": schema}}


def _sampling(text: str, max_tokens: int) -> JSONObject:
    messages = [{"role": "user", "content": {"type": "text", "text": text}}]
    return {"method": "sampling/createMessage", "params": {"messages": messages, "maxTokens": max_tokens}}


ROOTS_REQUEST: JSONObject = {"method": "roots/list", "params": {}}
NAME_REQUEST = _elicitation("What is your name?", {"name": {"type": "string"}}, ["name"])
GREETING_REQUEST = _sampling("Generate a greeting", 50)
CAPITAL_REQUEST = _sampling("What is the capital of France?", 100)
CONFIRM_REQUEST = _elicitation("Please confirm", {"ok": {"type": "boolean"}}, ["ok"])


def _answer_ok(method: str, answer: Any) -> bool:
    """Whether ``answer`` has the shape of a client result for ``method``."""
    if not isinstance(answer, dict):
        return False
    if method == "elicitation/create":
        return answer.get("action") in ("accept", "decline", "cancel")
    if method == "sampling/createMessage":
        return "role" in answer and isinstance(answer.get("content"), dict | list)
    return isinstance(answer.get("roots"), list)


def _answered(ctx: Context, requests: dict[str, JSONObject]) -> dict[str, JSONObject] | None:
    """Every requested answer from this round's ``inputResponses``, or None if one is missing."""
    responses = ctx.input_responses or {}
    answers = {key: responses.get(key) for key in requests}
    if all(_answer_ok(str(request["method"]), answers[key]) for key, request in requests.items()):
        return {key: value for key, value in answers.items() if isinstance(value, dict)}
    return None


def _sampled_text(result: JSONObject) -> str:
    content = result.get("content")
    blocks = content if isinstance(content, list) else [content]
    return " ".join(str(b.get("text", "")) for b in blocks if isinstance(b, dict) and b.get("type") == "text")


def _root_names(result: JSONObject) -> str:
    roots = result.get("roots") or []
    return ", ".join(str(r.get("name") or r.get("uri")) for r in roots if isinstance(r, dict)) or "none"


# -- tools: content types (both eras) --------------------------------------------------------------
# A no-argument tool comes first: http-header-validation calls the first listed tool with {}.
@app.tool()
def test_simple_text() -> str:
    """Returns a fixed text block."""
    return "This is a simple text response for testing."


@app.tool()
def test_image_content() -> Image:
    """Returns a 1x1 PNG image block."""
    return Image(PNG_1X1, "image/png")


@app.tool()
def test_audio_content() -> Audio:
    """Returns a short silent WAV audio block."""
    return Audio(WAV_SILENCE, "audio/wav")


@app.tool()
def test_embedded_resource() -> EmbeddedResource:
    """Returns an embedded text resource."""
    return EmbeddedResource("test://embedded-resource", "This is an embedded resource content.", "text/plain")


@app.tool()
def test_multiple_content_types() -> list[str | Image | EmbeddedResource]:
    """Returns text, an image and an embedded JSON resource."""
    return [
        "Multiple content types test:",
        Image(PNG_1X1, "image/png"),
        EmbeddedResource("test://mixed-content-resource", '{"test":"data","value":123}', "application/json"),
    ]


@app.tool()
def test_error_handling() -> str:
    """Always fails with a tool execution error (isError), not a protocol error."""
    raise ToolError("This tool intentionally returns an error for testing")


@app.tool()
async def test_tool_with_progress(ctx: Context) -> str:
    """Reports progress 0, 50 and 100 of 100, then returns."""
    for step in (0, 50, 100):
        await ctx.report_progress(step, 100, f"Step {step // 50 + 1} of 3")
        if step < 100:
            await anyio.sleep(STEP_DELAY)
    return "Progress test completed"


@app.tool()
async def test_tool_with_logging(ctx: Context) -> str:
    """Sends three info log messages (when the client's log level allows), then returns."""
    for text in ("Tool execution started", "Tool processing data", "Tool execution completed"):
        await ctx.info(text)
        if text != "Tool execution completed":
            await anyio.sleep(STEP_DELAY)
    return "Logging test completed"


@app.tool()
async def test_sampling(prompt: str, ctx: Context) -> str:
    """Asks the client's model to answer ``prompt`` (needs the sampling capability)."""
    result = await ctx.sample(prompt, max_tokens=100)
    return f"LLM response: {_sampled_text(result)}"


@app.tool()
async def test_elicitation(message: str, ctx: Context) -> str:
    """Asks the user for a username and an email address."""
    schema: JSONObject = {
        "type": "object",
        "properties": {"username": {"type": "string"}, "email": {"type": "string"}},
        "required": ["username", "email"],
    }
    answer = await ctx.elicit(message, schema)
    return f"User response: action={answer.action}, content={answer.content}"


SEP1034_SCHEMA: JSONObject = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "description": "User name", "default": "John Doe"},
        "age": {"type": "integer", "description": "User age", "default": 30},
        "score": {"type": "number", "description": "User score", "default": 95.5},
        "status": {
            "type": "string",
            "description": "User status",
            "enum": ["active", "inactive", "pending"],
            "default": "active",
        },
        "verified": {"type": "boolean", "description": "Verification status", "default": True},
    },
}


@app.tool()
async def test_elicitation_sep1034_defaults(ctx: Context) -> str:
    """Elicits a form whose fields all carry defaults (SEP-1034)."""
    answer = await ctx.elicit("Please review and update the form fields with defaults", SEP1034_SCHEMA)
    return f"Elicitation completed: action={answer.action}, content={answer.content}"


_OPTIONS = ["option1", "option2", "option3"]
_TITLED = [
    {"const": value, "title": f"Option {n}"} for n, value in enumerate(("value1", "value2", "value3"), 1)
]
SEP1330_SCHEMA: JSONObject = {
    "type": "object",
    "properties": {
        "untitledSingle": {"type": "string", "description": "Untitled single-select", "enum": _OPTIONS},
        "titledSingle": {"type": "string", "description": "Titled single-select", "oneOf": _TITLED},
        "legacyEnum": {
            "type": "string",
            "description": "Legacy titled enum",
            "enum": _OPTIONS,
            "enumNames": ["Option One", "Option Two", "Option Three"],
        },
        "untitledMulti": {
            "type": "array",
            "description": "Untitled multi-select",
            "items": {"type": "string", "enum": _OPTIONS},
        },
        "titledMulti": {
            "type": "array",
            "description": "Titled multi-select",
            "items": {"anyOf": _TITLED},
        },
    },
}


@app.tool()
async def test_elicitation_sep1330_enums(ctx: Context) -> str:
    """Elicits a form with every enum form of SEP-1330."""
    answer = await ctx.elicit("Please select options from the enum fields", SEP1330_SCHEMA)
    return f"Elicitation completed: action={answer.action}, content={answer.content}"


RECONNECT_DELAY = 0.5  # seconds the result is held back after the stream closed


@app.tool()
async def test_reconnection(ctx: Context) -> str:
    """Closes its SSE stream mid-call (SEP-1699); the result arrives after the client resumes."""
    await ctx.close_sse_stream()
    await anyio.sleep(RECONNECT_DELAY)
    return "Reconnection test completed"


JSON_SCHEMA_2020_12: JSONObject = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {
        "address": {
            "$anchor": "addressDef",
            "type": "object",
            "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
        }
    },
    "properties": {
        "name": {"type": "string"},
        "address": {"$ref": "#/$defs/address"},
        "contactMethod": {"type": "string", "enum": ["phone", "email"]},
        "phone": {"type": "string"},
        "email": {"type": "string"},
    },
    "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
    "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
    "then": {"required": ["phone"]},
    "else": {"required": ["email"]},
    "additionalProperties": False,
}


class Address(BaseModel):
    street: str | None = None
    city: str | None = None


def json_schema_2020_12_tool(
    name: str | None = None,
    address: Address | None = None,
    contactMethod: Literal["phone", "email"] | None = None,
    phone: str | None = None,
    email: str | None = None,
) -> str:
    """Tool with JSON Schema 2020-12 features."""
    if phone is None and email is None:
        raise ToolError("Give a phone number or an email address")
    if contactMethod == "phone" and phone is None:
        raise ToolError("contactMethod 'phone' needs a phone number")
    return f"Contact recorded for {name or 'anonymous'}"


# The suite checks that a hand-written 2020-12 schema reaches clients unchanged. Arguments are
# still validated by the signature above, which accepts the same properties.
app.add_tool(json_schema_2020_12_tool).definition["inputSchema"] = JSON_SCHEMA_2020_12


# -- tools: 2026-07-28 protocol checks -------------------------------------------------------------
@app.tool()
async def test_missing_capability(ctx: Context) -> str:
    """Needs the client's sampling capability (the suite calls it without: -32021)."""
    result = await ctx.sample("Say hello", max_tokens=10)
    return f"Sampled: {_sampled_text(result)}"


@app.tool()
async def test_streaming_elicitation(ctx: Context) -> str:
    """Reports progress, then asks for a name: the answer is never a server->client request."""
    await ctx.report_progress(1, 2, "Asking for a name")
    answer = await ctx.elicit("What is your name?", NameAnswer, key="user_name")
    return f"Hello, {answer.data.name if answer.data else 'stranger'}!"


@app.tool()
async def test_logging_tool(ctx: Context) -> str:
    """Logs at several levels; nothing is sent unless the request names a log level."""
    await ctx.debug("debug message from test_logging_tool")
    await ctx.info("info message from test_logging_tool")
    await ctx.warning("warning message from test_logging_tool")
    return "Logging tool completed"


def _dynamic_tool() -> str:
    """A tool that exists only while test_trigger_tool_change runs."""
    return "dynamic"


def _dynamic_prompt() -> str:
    """A prompt that exists only while test_trigger_prompt_change runs."""
    return "dynamic"


@app.tool()
async def test_trigger_tool_change(ctx: Context) -> str:
    """Adds and removes a tool, then announces that the tool list changed."""
    ctx.server.add_tool(_dynamic_tool, name="test_dynamic_tool")
    ctx.server.remove_tool("test_dynamic_tool")
    await ctx.notify_tools_changed()
    return "Tool list changed"


@app.tool()
async def test_trigger_prompt_change(ctx: Context) -> str:
    """Adds and removes a prompt, then announces that the prompt list changed."""
    ctx.server.add_prompt(_dynamic_prompt, name="test_dynamic_prompt")
    ctx.server.remove_prompt("test_dynamic_prompt")
    await ctx.notify_prompts_changed()
    return "Prompt list changed"


@app.tool()
def test_x_mcp_header(region: Annotated[str, Field(json_schema_extra={"x-mcp-header": "Region"})]) -> str:
    """Echoes ``region``, which clients also send as the Mcp-Param-Region header."""
    return f"Region: {region}"


# -- tools: 2026-07-28 input_required (MRTR) --------------------------------------------------------
@app.tool()
async def test_input_required_result_elicitation(ctx: Context) -> str:
    """Asks the user's name, then greets them."""
    answer = await ctx.elicit("What is your name?", NameAnswer, key="user_name")
    if answer.data is None:
        return f"No name given (action={answer.action})"
    return f"Hello, {answer.data.name}!"


@app.tool()
async def test_input_required_result_sampling(ctx: Context) -> str:
    """Asks the client's model a question and returns its answer."""
    result = await ctx.sample("What is the capital of France?", max_tokens=100, key="capital_question")
    return f"The model answered: {_sampled_text(result)}"


@app.tool()
async def test_input_required_result_list_roots(ctx: Context) -> str:
    """Lists the client's roots."""
    roots = await ctx.list_roots(key="client_roots")
    return f"Client roots: {_root_names({'roots': roots})}"


@app.tool()
async def test_input_required_result_request_state(ctx: Context) -> str | InputRequired:
    """Asks for a confirmation and carries explicit state to the next round."""
    requests = {"confirm": CONFIRM_REQUEST}
    answers = _answered(ctx, requests)
    if answers is None or ctx.request_state != {"step": "confirm"}:
        return InputRequired(requests, state={"step": "confirm"})
    content = answers["confirm"].get("content") or {}
    return f"state-ok: confirmed={content.get('ok')}"


@app.tool()
async def test_input_required_result_multiple_inputs(ctx: Context) -> str | InputRequired:
    """Asks for a name, a sampled greeting and the roots in one round."""
    requests = {"user_name": NAME_REQUEST, "greeting": GREETING_REQUEST, "client_roots": ROOTS_REQUEST}
    answers = _answered(ctx, requests)
    if answers is None:
        return InputRequired(requests, state={"step": "all-inputs"})
    name = (answers["user_name"].get("content") or {}).get("name", "stranger")
    greeting = _sampled_text(answers["greeting"])
    return f"{greeting} {name}; roots: {_root_names(answers['client_roots'])}"


@app.tool()
async def test_input_required_result_multi_round(ctx: Context) -> str:
    """Asks two questions in two rounds, then answers."""
    name = await ctx.elicit("Step 1: What is your name?", NameAnswer, key="step1")
    color = await ctx.elicit("Step 2: What is your favorite color?", ColorAnswer, key="step2")
    who = name.data.name if name.data else "stranger"
    favourite = color.data.color if color.data else "unknown"
    return f"{who} likes {favourite}"


@app.tool()
async def test_input_required_result_tampered_state(ctx: Context) -> str:
    """Asks a question; the sealed requestState makes tampering detectable."""
    answer = await ctx.elicit("What is your name?", NameAnswer, key="user_name")
    return f"Hello, {answer.data.name if answer.data else 'stranger'}!"


@app.tool()
async def test_input_required_result_capabilities(ctx: Context) -> str | InputRequired:
    """Asks only for input kinds the client declared on this request."""
    available = {
        "elicitation": ("user_name", NAME_REQUEST),
        "sampling": ("capital_question", CAPITAL_REQUEST),
        "roots": ("client_roots", ROOTS_REQUEST),
    }
    requests = {
        key: request
        for capability, (key, request) in available.items()
        if capability in ctx.client_capabilities
    }
    if not requests:
        return "The client declared no capability to ask with"
    if _answered(ctx, requests) is None:
        return InputRequired(requests)
    return f"Answered: {', '.join(sorted(requests))}"


# -- resources --------------------------------------------------------------------------------------
@app.resource("test://static-text", name="static-text", mime_type="text/plain")
def static_text() -> str:
    """A static text resource."""
    return "This is the content of the static text resource."


@app.resource("test://static-binary", name="static-binary", mime_type="image/png")
def static_binary() -> bytes:
    """A static binary resource (a 1x1 PNG)."""
    return PNG_1X1


@app.resource("test://watched-resource", name="watched-resource", mime_type="text/plain")
def watched_resource() -> str:
    """A resource clients may subscribe to."""
    return "Watched resource content."


@app.resource("test://template/{id}/data", name="template-data", mime_type="application/json")
def template_data(id: str) -> JSONObject:
    """Data for one id, from a URI template."""
    return {"id": id, "templateTest": True, "data": f"Data for ID: {id}"}


# -- prompts ----------------------------------------------------------------------------------------
@app.prompt()
def test_simple_prompt() -> Message:
    """A prompt without arguments."""
    return UserMessage("This is a simple prompt for testing.")


@app.prompt()
def test_prompt_with_arguments(
    arg1: Annotated[str, Field(description="First test argument")],
    arg2: Annotated[str, Field(description="Second test argument")],
) -> Message:
    """A prompt with two required arguments."""
    return UserMessage(f"Prompt with arguments: arg1='{arg1}', arg2='{arg2}'")


@app.prompt()
def test_prompt_with_embedded_resource(
    resourceUri: Annotated[str, Field(description="URI of the resource to embed")],
) -> list[Message]:
    """A prompt that embeds a resource."""
    return [
        UserMessage(EmbeddedResource(resourceUri, "Embedded resource content for testing.", "text/plain")),
        UserMessage("Please process the embedded resource above."),
    ]


@app.prompt()
def test_prompt_with_image() -> list[Message]:
    """A prompt with an image."""
    return [UserMessage(Image(PNG_1X1, "image/png")), UserMessage("Please analyze the image above.")]


@app.prompt()
async def test_input_required_result_prompt(ctx: Context) -> list[Message]:
    """A prompt that first asks the user which context to use."""
    answer = await ctx.elicit("What context should the prompt use?", PromptContextAnswer, key="user_context")
    context = answer.data.context if answer.data else "general"
    return [UserMessage(f"Use this context: {context}")]


# -- completion -------------------------------------------------------------------------------------
_SUGGESTIONS = {"arg1": ["test", "testValue1", "example"], "arg2": ["test", "testValue2", "sample"]}


@app.completion()
def complete(
    ref: PromptReference | ResourceTemplateReference,
    argument: CompletionArgument,
    context: CompletionContext,
) -> Completion:
    """Suggestions for test_prompt_with_arguments' arguments that start with the typed prefix."""
    if not isinstance(ref, PromptReference) or ref.name != "test_prompt_with_arguments":
        return Completion([])
    values = [v for v in _SUGGESTIONS.get(argument.name, []) if v.startswith(argument.value)]
    return Completion(values, total=len(values), has_more=False)
