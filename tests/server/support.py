"""A small MCPServer exercising every handler shape, and builders for in-process calls."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

import anyio
from pydantic import BaseModel, Field

from mcpserve.errors import InvalidParams, ToolError
from mcpserve.principal import Principal
from mcpserve.protocol.sealing import KeyRing
from mcpserve.protocol.session import LegacySession
from mcpserve.protocol.versions import LATEST_LEGACY, MODERN, Era
from mcpserve.server.app import Completion, CompletionArgument, MCPServer, PromptReference
from mcpserve.server.call import Call, NoOutbound, Outbound
from mcpserve.server.content import AssistantMessage, ToolAnnotations, UserMessage
from mcpserve.server.context import Context, InputRequired
from mcpserve.server.dispatch import Dispatcher
from mcpserve.types import JSONObject, RequestId

ELICIT: JSONObject = {"elicitation": {}}
ALL_CAPABILITIES: JSONObject = {"elicitation": {}, "sampling": {}, "roots": {"listChanged": True}}
KEY = bytes(range(32))


class Confirmation(BaseModel):
    confirm: bool = Field(description="Go ahead?")
    note: str = ""


class Weather(BaseModel):
    city: str
    celsius: float


@dataclass
class RecordingOutbound:
    """Collects notifications; answers server→client requests from ``answers`` (2025 era)."""

    answers: list[JSONObject] = field(default_factory=list)
    notifications: list[tuple[str, JSONObject]] = field(default_factory=list)
    requests: list[tuple[str, JSONObject]] = field(default_factory=list)

    async def notify(self, method: str, params: JSONObject) -> None:
        self.notifications.append((method, params))

    async def request(self, method: str, params: JSONObject) -> JSONObject:
        self.requests.append((method, params))
        if not self.answers:
            raise ToolError(f"test outbound has no answer for {method}")
        return self.answers.pop(0)

    def of(self, method: str) -> list[JSONObject]:
        return [params for name, params in self.notifications if name == method]


def build_server(*, completion: bool = True) -> MCPServer:
    """The in-process test server: one handler per behaviour under test."""
    server = MCPServer("test-server", version="9.9.9", instructions="Use the tools.", title="Test Server")

    @server.tool(annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True), title="Add")
    def add(a: int, b: int) -> int:
        """Add two integers.

        Args:
            a: First addend.
            b: Second addend.
        """
        return a + b

    @server.tool()
    async def greet(
        name: Annotated[str, Field(description="Who to greet", min_length=1)], excited: bool = False
    ) -> str:
        """Say hello."""
        return f"Hello, {name}{'!' if excited else '.'}"

    @server.tool()
    async def weather(city: str) -> Weather:
        """Weather for a city."""
        return Weather(city=city, celsius=21.5)

    @server.tool()
    async def refuse() -> str:
        raise ToolError("The upstream refused: quota exhausted, retry after 60 s")

    @server.tool()
    async def crash() -> str:
        raise RuntimeError("boom at /srv/secret/config.py line 12")

    @server.tool()
    async def garbage() -> int:
        return "not a number"  # type: ignore[return-value]

    @server.tool()
    async def wait_forever() -> str:
        await anyio.Event().wait()
        return "unreachable"

    @server.tool()
    async def progress(ctx: Context) -> str:
        for value in (1, 1, 0.5, 2, 3.5):
            await ctx.report_progress(value, total=4, message=f"step {value}")
        return "done"

    @server.tool()
    async def chatty(ctx: Context) -> str:
        for level in ("debug", "info", "warning", "error"):
            await ctx.log(level, f"{level} message", logger_name="chatty")
        await ctx.info({"structured": True})
        await ctx.debug("d")
        await ctx.warning("w")
        await ctx.error("e")
        return "logged"

    @server.tool()
    async def confirm(action: str, ctx: Context) -> str:
        """Ask the user to confirm an action."""
        answer = await ctx.elicit(f"Really {action}?", Confirmation)
        if answer.action != "accept" or answer.data is None:
            return f"{action}: {answer.action}"
        return f"{action}: confirm={answer.data.confirm} note={answer.data.note}"

    @server.tool()
    async def two_questions(ctx: Context) -> str:
        first = await ctx.elicit("First?", {"type": "object", "properties": {"x": {"type": "string"}}})
        second = await ctx.elicit("Second?", {"type": "object", "properties": {"y": {"type": "string"}}})
        return f"{first.action}:{first.content} {second.action}:{second.content}"

    @server.tool()
    async def ask_model(ctx: Context) -> str:
        answer = await ctx.sample("Say hi", max_tokens=10, system_prompt="Be brief", temperature=0.1)
        return str(answer["content"]["text"])

    @server.tool()
    async def roots(ctx: Context) -> list[str]:
        return [str(root["uri"]) for root in await ctx.list_roots()]

    @server.tool()
    async def explicit(step: int, ctx: Context) -> str:
        """Asks through an explicit InputRequired and reads its own state back."""
        if ctx.input_responses and "pick" in ctx.input_responses:
            return f"state={ctx.request_state} pick={ctx.input_responses['pick']['content']}"
        question = {"method": "elicitation/create", "params": {"message": "Pick", "requestedSchema": {}}}
        return InputRequired({"pick": question}, state={"step": step})  # type: ignore[return-value]

    @server.tool(name="approval")
    async def approval_tool(ctx: Context) -> str:
        """Same name as the ``approval`` prompt: state minted for one must not open for the other."""
        answer = await ctx.elicit("Approve the tool?", Confirmation)
        return f"approved={answer.action}"

    @server.tool()
    async def nagging() -> str:
        question = {"method": "elicitation/create", "params": {"message": "Again?", "requestedSchema": {}}}
        return InputRequired({"again": question})  # type: ignore[return-value]

    @server.tool()
    async def facts(ctx: Context) -> JSONObject:
        return {
            "id": ctx.request_id,
            "era": ctx.era,
            "version": ctx.protocol_version,
            "capabilities": ctx.client_capabilities,
            "client": ctx.client_info,
            "principal": ctx.principal.name if ctx.principal else None,
            "session": ctx.session.protocol_version if ctx.session else None,
            "headers": ctx.headers,
            "server": ctx.server.name,
        }

    @server.tool(scopes={"admin"})
    async def admin_only() -> str:
        return "secret"

    @server.resource(
        "config://app", title="App config", description="The configuration.", mime_type="text/plain"
    )
    def app_config() -> str:
        return "debug = false"

    @server.resource("data://logo")
    def logo() -> bytes:
        """The logo."""
        return b"\x89PNG"

    @server.resource("data://stats", annotations={"audience": ["user"]})
    async def stats() -> JSONObject:
        return {"users": 3}

    @server.resource("data://weather")
    async def weather_resource() -> Weather:
        return Weather(city="Oslo", celsius=-3.0)

    @server.resource("data://broken")
    async def broken() -> str:
        raise RuntimeError("disk failure at /var/lib/secret")

    @server.resource("users://{user_id}/profile", mime_type="application/json")
    async def profile(user_id: int) -> JSONObject:
        """A user's profile."""
        return {"id": user_id, "name": f"user{user_id}"}

    @server.resource("vault://{name}")
    async def vault(name: str, ctx: Context) -> str:
        answer = await ctx.elicit(f"Unlock {name}?", Confirmation)
        return f"{name} unlocked" if answer.action == "accept" else f"{name} locked"

    @server.resource("admin://secrets", scopes={"admin"})
    def secrets() -> str:
        return "s3cr3t"

    @server.prompt(title="Code review")
    def review(code: str, language: str = "python") -> str:
        """Review some code.

        Args:
            code: The code to review.
            language: Its language.
        """
        return f"Review this {language}:\n{code}"

    @server.prompt()
    async def conversation(topic: str) -> list[Any]:
        return [
            UserMessage(f"Tell me about {topic}"),
            AssistantMessage("Gladly."),
            {"role": "user", "content": "More, please."},
            {"role": "assistant", "content": {"type": "text", "text": "Sure."}},
        ]

    @server.prompt()
    async def approval(ctx: Context) -> str:
        answer = await ctx.elicit("Approve the prompt?", Confirmation)
        return f"approved={answer.action}"

    @server.prompt()
    async def failing() -> str:
        raise ValueError("template store unreachable at /opt/secret")

    @server.prompt()
    async def picky(number: str) -> str:
        if not number.isdigit():
            raise InvalidParams("number must be digits")
        return number

    if completion:

        @server.completion()
        async def complete(
            ref: Any, argument: CompletionArgument, context: Any
        ) -> Completion | list[str] | None:
            if isinstance(ref, PromptReference) and argument.name == "language":
                return Completion([v for v in ("python", "perl", "rust") if v.startswith(argument.value)])
            if isinstance(ref, PromptReference) and argument.name == "many":
                return [f"v{i}" for i in range(150)]
            if isinstance(ref, PromptReference) and argument.name == "echo":
                return [f"{argument.value}:{context.arguments}"]
            return None

    return server


def dispatcher(
    server: MCPServer | None = None, *, clock: Callable[[], float] | None = None, **options: Any
) -> Dispatcher:
    extra: dict[str, Any] = {"clock": clock} if clock is not None else {}
    return Dispatcher(server or build_server(), keyring=KeyRing([KEY]), **options, **extra)


def modern(
    method: str,
    params: JSONObject | None = None,
    *,
    request_id: RequestId = 1,
    capabilities: JSONObject | None = None,
    log_level: str | None = None,
    progress_token: str | int | None = None,
    principal: Principal | None = None,
    outbound: Outbound | None = None,
) -> Call:
    """A 2026-07-28 call as a transport would build it after validating the envelope."""
    return _call(
        "modern",
        MODERN,
        method,
        params,
        request_id,
        capabilities,
        log_level,
        progress_token,
        principal,
        outbound,
    )


def legacy(
    method: str,
    params: JSONObject | None = None,
    *,
    request_id: RequestId = 1,
    capabilities: JSONObject | None = None,
    log_level: str | None = None,
    progress_token: str | int | None = None,
    principal: Principal | None = None,
    outbound: Outbound | None = None,
    session: LegacySession | None = None,
) -> Call:
    """A 2025-era call on an initialized session."""
    call = _call(
        "legacy",
        LATEST_LEGACY,
        method,
        params,
        request_id,
        capabilities,
        log_level,
        progress_token,
        principal,
        outbound,
    )
    call.session = session or LegacySession(
        LATEST_LEGACY, call.client_capabilities, {"name": "t"}, initialized=True
    )
    return call


def _call(
    era: Era,
    version: str,
    method: str,
    params: JSONObject | None,
    request_id: RequestId,
    capabilities: JSONObject | None,
    log_level: str | None,
    progress_token: str | int | None,
    principal: Principal | None,
    outbound: Outbound | None,
) -> Call:
    return Call(
        request_id,
        method,
        params or {},
        era,
        version,
        capabilities if capabilities is not None else {},
        client_info={"name": "t", "version": "0"},
        log_level=log_level,
        progress_token=progress_token,
        principal=principal,
        outbound=outbound or NoOutbound(),
    )


def result_of(response: JSONObject) -> JSONObject:
    """The ``result`` member, failing loudly with the error when there is none."""
    assert "error" not in response, response
    result: JSONObject = response["result"]
    return result


def error_of(response: JSONObject) -> JSONObject:
    assert "result" not in response, response
    error: JSONObject = response["error"]
    return error


def text_of(result: JSONObject) -> str:
    """The text of a result's single text block."""
    (block,) = result["content"]
    assert block["type"] == "text"
    text: str = block["text"]
    return text
