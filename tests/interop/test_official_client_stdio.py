"""The official Python client (``mcp`` 2.3.0) against ``mcpserve serve --transport stdio``.

One child process per client mode serves every test of this module: ``legacy`` (initialize
handshake), ``2026-07-28`` (pinned, per-request ``_meta``) and ``auto`` (probe ``server/discover``).
Each demo tool is called with good arguments and with bad ones (wrong type, missing, bad value);
a bad call must come back as an ``isError`` result whose text tells the model what to fix.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.session import ClientRequestContext
from mcp.client.subscriptions import ResourceUpdated, ToolsListChanged
from mcp.shared.exceptions import MCPError

from mcpserve.protocol.envelope import SERVER_INFO_KEY
from tests.support.processes import ROOT, coverage_env, mcpserve_argv

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

MODES = ["legacy", "2026-07-28", "auto"]
DEMO_TOOLS = ["query_database", "get_deployment_status", "search_docs", "read_doc", "plan_rollback"]
ROLLBACK_QUESTION = "Roll payments back from 5.5.0 to 5.3.2 in production?"


@dataclass
class Demo:
    """A connected client, the mode it was opened with, and its scripted elicitation answers."""

    client: Client
    mode: str
    answers: list[types.ElicitResult] = field(default_factory=list)
    asked: list[tuple[types.RequestId, types.ElicitRequestParams]] = field(default_factory=list)

    @property
    def modern(self) -> bool:
        return self.mode != "legacy"

    async def call(self, name: str, arguments: dict[str, Any] | None = None) -> types.CallToolResult:
        with anyio.fail_after(10):
            return await self.client.call_tool(name, arguments)


def _server(*args: str, **env: str) -> StdioServerParameters:
    command, *rest = mcpserve_argv("serve", "--transport", "stdio", *args)
    return StdioServerParameters(
        command=command, args=rest, env={**coverage_env(), "MCPSERVE_LOG_LEVEL": "warning", **env}, cwd=ROOT
    )


@pytest.fixture(scope="module", params=MODES)
async def demo(request: pytest.FixtureRequest) -> AsyncIterator[Demo]:
    answers: list[types.ElicitResult] = []
    asked: list[tuple[types.RequestId, types.ElicitRequestParams]] = []

    async def on_elicit(
        context: ClientRequestContext, params: types.ElicitRequestParams
    ) -> types.ElicitResult:
        asked.append((context.request_id, params))
        return answers.pop(0) if answers else types.ElicitResult(action="cancel")

    client = Client(_server(), mode=request.param, elicitation_callback=on_elicit, read_timeout_seconds=30)
    async with client:
        yield Demo(client, request.param, answers, asked)


def _text(result: types.CallToolResult) -> str:
    (block,) = result.content
    assert isinstance(block, types.TextContent)
    return block.text


def _assert_tool_error(result: types.CallToolResult, *fragments: str) -> None:
    assert result.is_error is True
    text = _text(result)
    for fragment in fragments:
        assert fragment in text, text
    assert "Traceback" not in text


def _assert_era_shape(demo: Demo, result: Any) -> None:
    """Modern results carry resultType and serverInfo; legacy results carry neither."""
    if demo.modern:
        assert result.result_type == "complete"
        assert result.meta is not None
        assert result.meta[SERVER_INFO_KEY]["name"] == "mcpserve-demo"
    else:
        assert result.meta is None


# -- connection -------------------------------------------------------------------------------------


async def test_negotiated_version_matches_the_mode(demo: Demo) -> None:
    client = demo.client
    if demo.mode == "legacy":
        assert client.protocol_version == "2025-11-25"
        assert client.server_info is not None and client.server_info.name == "mcpserve-demo"
        assert client.instructions is not None and "Operations assistant" in client.instructions
    elif demo.mode == "auto":
        assert client.protocol_version == "2026-07-28"
        assert client.server_info is not None and client.server_info.name == "mcpserve-demo"
        assert client.server_capabilities.tools is not None
        assert client.server_capabilities.completions is not None
    else:
        assert client.protocol_version == "2026-07-28"


async def test_lists_the_demo_tools_with_schemas_and_annotations(demo: Demo) -> None:
    with anyio.fail_after(10):
        listed = await demo.client.list_tools()
    assert [tool.name for tool in listed.tools] == DEMO_TOOLS
    assert listed.next_cursor is None
    tools = {tool.name: tool for tool in listed.tools}
    query = tools["query_database"]
    assert query.input_schema["required"] == ["sql"]
    assert query.output_schema is not None and "rows" in query.output_schema["properties"]
    assert query.annotations is not None and query.annotations.read_only_hint is True
    assert tools["search_docs"].input_schema["properties"]["limit"]["maximum"] == 20
    if demo.modern:
        assert (listed.ttl_ms, listed.cache_scope) == (0, "public")
    _assert_era_shape(demo, listed)


# -- each tool, good and bad arguments ------------------------------------------------------------------


async def test_query_database(demo: Demo) -> None:
    ok = await demo.call("query_database", {"sql": "SELECT name FROM services ORDER BY name LIMIT 2"})
    assert ok.is_error is False
    assert ok.structured_content is not None
    assert ok.structured_content["columns"] == ["name"]
    assert ok.structured_content["row_count"] == 2
    _assert_era_shape(demo, ok)
    _assert_tool_error(await demo.call("query_database", {"sql": 42}), "sql: Input should be a valid string")
    _assert_tool_error(await demo.call("query_database", {}), "sql: Field required")
    refused = await demo.call("query_database", {"sql": "DELETE FROM services"})
    _assert_tool_error(refused, "SELECT")


async def test_get_deployment_status(demo: Demo) -> None:
    ok = await demo.call("get_deployment_status", {"service": "payments"})
    assert ok.is_error is False
    assert ok.structured_content is not None
    assert ok.structured_content["service"]["name"] == "payments"
    _assert_tool_error(await demo.call("get_deployment_status", {"service": ["payments"]}), "service:")
    _assert_tool_error(await demo.call("get_deployment_status", {}), "service: Field required")
    _assert_tool_error(
        await demo.call("get_deployment_status", {"service": "no-such-service"}), "no-such-service"
    )


async def test_search_docs(demo: Demo) -> None:
    ok = await demo.call("search_docs", {"query": "rollback", "limit": 3})
    assert ok.is_error is False
    assert ok.structured_content is not None
    hits = ok.structured_content["result"]
    assert 1 <= len(hits) <= 3
    assert any(hit["path"] == "deploy-rollback.md" for hit in hits)
    _assert_tool_error(await demo.call("search_docs", {"query": "x", "limit": "many"}), "limit:")
    _assert_tool_error(await demo.call("search_docs", {"limit": 2}), "query: Field required")
    _assert_tool_error(
        await demo.call("search_docs", {"query": "rollback", "limit": 0}),
        "limit: Input should be greater than or equal to 1",
    )


async def test_read_doc(demo: Demo) -> None:
    ok = await demo.call("read_doc", {"path": "deploy-rollback.md"})
    assert ok.is_error is False
    assert _text(ok).startswith("# Deploy Rollback")
    _assert_tool_error(await demo.call("read_doc", {"path": 7}), "path: Input should be a valid string")
    _assert_tool_error(await demo.call("read_doc", {}), "path: Field required")
    missing = await demo.call("read_doc", {"path": "../../etc/passwd"})
    _assert_tool_error(missing, "deploy-rollback.md")  # names the runbooks that do exist


async def test_plan_rollback_bad_arguments(demo: Demo) -> None:
    _assert_tool_error(
        await demo.call("plan_rollback", {"service": 3}), "service: Input should be a valid string"
    )
    _assert_tool_error(await demo.call("plan_rollback", {}), "service: Field required")
    _assert_tool_error(await demo.call("plan_rollback", {"service": "nope"}), "nope")
    _assert_tool_error(
        await demo.call("plan_rollback", {"service": "payments", "force": True}), "force: Extra inputs"
    )
    assert demo.asked == []


async def test_unknown_tool_is_an_error_result(demo: Demo) -> None:
    _assert_tool_error(await demo.call("drop_database", {}), "Unknown tool: 'drop_database'")


# -- one elicitation tool, both eras ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        (types.ElicitResult(action="accept", content={"confirm": True, "reason": "error spike"}), "planned"),
        (types.ElicitResult(action="accept", content={"confirm": False}), "declined"),
        (types.ElicitResult(action="decline"), "declined"),
        (types.ElicitResult(action="cancel"), "cancelled"),
    ],
)
async def test_plan_rollback_asks_the_user(demo: Demo, answer: types.ElicitResult, status: str) -> None:
    demo.asked.clear()
    demo.answers[:] = [answer]
    result = await demo.call("plan_rollback", {"service": "payments"})
    assert result.is_error is False
    assert result.structured_content is not None
    plan = result.structured_content
    assert plan["status"] == status
    assert (plan["from_version"], plan["to_version"]) == ("5.5.0", "5.3.2")
    if status == "planned":
        assert plan["reason"] == "error spike"
        assert plan["steps"][1] == "Deploy 5.3.2 to production with the standard pipeline"
    else:
        assert plan["steps"] == []
    ((request_id, params),) = demo.asked
    assert isinstance(params, types.ElicitRequestFormParams)
    assert params.message == ROLLBACK_QUESTION
    assert params.requested_schema["required"] == ["confirm"]
    if demo.mode == "legacy":
        # A real server→client JSON-RPC request, numbered by the server.
        assert str(request_id).startswith("mcpserve-")
    _assert_era_shape(demo, result)


async def test_plan_rollback_question_travels_the_way_the_era_prescribes(demo: Demo) -> None:
    """2025 era: a server→client request inside the call. 2026-07-28: input_required rounds."""
    session = demo.client.session
    demo.asked.clear()
    demo.answers[:] = [types.ElicitResult(action="decline")]
    with anyio.fail_after(10):
        first = await session.call_tool("plan_rollback", {"service": "payments"}, allow_input_required=True)
    if not demo.modern:
        assert isinstance(first, types.CallToolResult)
        assert first.structured_content is not None
        assert first.structured_content["status"] == "declined"
        assert len(demo.asked) == 1
        return
    assert demo.asked == []  # nothing was asked on the server's initiative
    assert isinstance(first, types.InputRequiredResult)
    assert first.request_state
    assert first.input_requests is not None
    ((key, question),) = first.input_requests.items()
    assert question.method == "elicitation/create"
    answer: types.InputResponses = {key: types.ElicitResult(action="accept", content={"confirm": True})}
    with anyio.fail_after(10), pytest.raises(MCPError) as tampered:
        await session.call_tool(
            "plan_rollback",
            {"service": "payments"},
            input_responses=answer,
            request_state=first.request_state + "-TAMPERED",
            allow_input_required=True,
        )
    assert tampered.value.code == -32602
    with anyio.fail_after(10):
        done = await session.call_tool(
            "plan_rollback",
            {"service": "payments"},
            input_responses=answer,
            request_state=first.request_state,
            allow_input_required=True,
        )
    assert isinstance(done, types.CallToolResult)
    assert done.structured_content is not None
    assert done.structured_content["status"] == "planned"


# -- resources, prompts, completion -----------------------------------------------------------------------


async def test_reads_a_runbook_resource(demo: Demo) -> None:
    with anyio.fail_after(10):
        listed = await demo.client.list_resources()
        read = await demo.client.read_resource("runbook://deploy-rollback.md")
    uris = [str(resource.uri) for resource in listed.resources]
    assert "runbook://deploy-rollback.md" in uris
    (content,) = read.contents
    assert isinstance(content, types.TextResourceContents)
    assert content.mime_type == "text/markdown"
    assert content.text.startswith("# Deploy Rollback")
    _assert_era_shape(demo, read)
    if demo.modern:
        assert (read.ttl_ms, read.cache_scope) == (0, "private")


async def test_missing_resource_error_matches_the_era(demo: Demo) -> None:
    with anyio.fail_after(10), pytest.raises(MCPError) as caught:
        await demo.client.read_resource("runbook://no-such-runbook.md")
    assert caught.value.code == (-32602 if demo.modern else -32002)
    assert caught.value.data == {"uri": "runbook://no-such-runbook.md"}


async def test_gets_the_incident_prompt(demo: Demo) -> None:
    with anyio.fail_after(10):
        prompts = await demo.client.list_prompts()
        prompt = await demo.client.get_prompt("summarize_incident", {"incident_id": "124"})
    (listed,) = prompts.prompts
    assert listed.name == "summarize_incident"
    assert listed.arguments is not None and listed.arguments[0].required is True
    (message,) = prompt.messages
    assert message.role == "user"
    assert isinstance(message.content, types.TextContent)
    assert "Incident record:" in message.content.text
    assert "checkout-api" in message.content.text
    _assert_era_shape(demo, prompt)


@pytest.mark.parametrize(
    ("name", "arguments", "fragment"),
    [
        ("summarize_incident", {"incident_id": "abc"}, "incident_id must be a number"),
        ("summarize_incident", {"incident_id": "99999"}, "No incident with id 99999"),
        ("summarize_incident", {}, "incident_id: Field required"),
        ("no_such_prompt", {}, "Unknown prompt"),
    ],
)
async def test_bad_prompt_requests_are_invalid_params(
    demo: Demo, name: str, arguments: dict[str, str], fragment: str
) -> None:
    with anyio.fail_after(10), pytest.raises(MCPError) as caught:
        await demo.client.get_prompt(name, arguments)
    assert caught.value.code == -32602
    assert fragment in caught.value.message


async def test_completes_incident_ids(demo: Demo) -> None:
    with anyio.fail_after(10):
        result = await demo.client.complete(
            types.PromptReference(type="ref/prompt", name="summarize_incident"),
            {"name": "incident_id", "value": "12"},
        )
    assert "124" in result.completion.values
    assert all(value.startswith("12") for value in result.completion.values)


# -- change notifications over a listen stream (2026-07-28 only) -------------------------------------


async def test_listen_stream_over_stdio_delivers_only_subscribed_changes() -> None:
    app = str(ROOT / "tests" / "transports" / "stdio_app.py")
    with anyio.fail_after(30):
        async with Client(_server(app), mode="2026-07-28") as client:
            async with client.listen(
                tools_list_changed=True, resource_subscriptions=["config://x"]
            ) as events:
                assert events.honored.tools_list_changed is True
                assert events.honored.resource_subscriptions == ["config://x"]
                touched = await client.call_tool("touch", {})
                assert touched.is_error is False
                received = [await events.__anext__(), await events.__anext__()]
            assert received == [ToolsListChanged(), ResourceUpdated(uri="config://x")]
            # The connection still serves requests after the stream was cancelled.
            assert (await client.call_tool("echo", {"text": "after"})).structured_content == {
                "result": "after"
            }
