"""The 2025 era through the Dispatcher: lifecycle, session methods, server→client requests."""

from __future__ import annotations

import pytest

from mcpserve.protocol.session import LegacySession
from mcpserve.protocol.versions import LEGACY_VERSIONS
from mcpserve.server.call import Call, NoOutbound
from mcpserve.types import JSONObject
from tests.ops.support import initialize, make_app, session_headers
from tests.server.support import (
    ELICIT,
    RecordingOutbound,
    build_server,
    dispatcher,
    error_of,
    legacy,
    result_of,
    text_of,
)
from tests.support.asgi import request, rpc

pytestmark = pytest.mark.anyio


def _initialize(version: object = "2025-11-25", **capabilities: object) -> Call:
    call = legacy(
        "initialize",
        {
            "protocolVersion": version,
            "capabilities": capabilities,
            "clientInfo": {"name": "c", "version": "1"},
        },
        request_id=0,
    )
    call.session = None
    return call


@pytest.mark.parametrize("version", LEGACY_VERSIONS)
async def test_initialize_echoes_a_supported_legacy_version(version: str) -> None:
    call = _initialize(version)
    result = result_of(await dispatcher().handle(call))
    assert result == {
        "protocolVersion": version,
        "capabilities": {
            "tools": {"listChanged": True},
            "prompts": {"listChanged": True},
            "resources": {"subscribe": True, "listChanged": True},
            "logging": {},
            "completions": {},
        },
        "serverInfo": {"name": "test-server", "version": "9.9.9", "title": "Test Server"},
        "instructions": "Use the tools.",
    }
    assert call.session == LegacySession(version, {}, {"name": "c", "version": "1"})


@pytest.mark.parametrize("version", ["2099-01-01", "2026-07-28", "1.0"])
async def test_initialize_with_another_version_gets_the_newest_legacy_one(version: str) -> None:
    assert result_of(await dispatcher().handle(_initialize(version)))["protocolVersion"] == "2025-11-25"


async def test_initialize_without_instructions_omits_them() -> None:
    server = build_server()
    server.instructions = None
    assert "instructions" not in result_of(await dispatcher(server).handle(_initialize()))


async def test_initialize_records_the_principal_and_capabilities() -> None:
    from mcpserve.principal import Principal  # noqa: PLC0415

    call = _initialize(elicitation={})
    call.principal = Principal("alice", issuer="https://issuer")
    await dispatcher().handle(call)
    assert call.session is not None
    assert call.session.principal == "https://issuer|alice|"
    assert call.session.client_capabilities == {"elicitation": {}}


async def test_initialize_twice_is_invalid_params() -> None:
    error = error_of(await dispatcher().handle(legacy("initialize", {"protocolVersion": "2025-11-25"})))
    assert error["code"] == -32602
    assert "already initialized" in error["message"]


async def test_initialize_without_a_version_is_invalid_params() -> None:
    call = _initialize()
    del call.params["protocolVersion"]
    assert error_of(await dispatcher().handle(call))["code"] == -32602
    assert call.session is None


async def test_initialized_notification_marks_the_session() -> None:
    app = make_app()  # over HTTP: the endpoint applies client notifications to the stored session
    session_id = (await initialize(app)).headers["mcp-session-id"]

    async def stored() -> LegacySession:
        return LegacySession.from_json(await app.endpoint.sessions.get(session_id))

    assert not (await stored()).initialized
    for method in ("notifications/initialized", "notifications/roots/list_changed"):
        note = rpc(method, request_id=None)
        reply = await request(app, "POST", headers=session_headers(session_id), body=note)
        assert reply.status == 202
        assert (await stored()).initialized


async def test_ping_answers_an_empty_result() -> None:
    assert await dispatcher().handle(legacy("ping", request_id="p")) == {
        "jsonrpc": "2.0",
        "id": "p",
        "result": {},
    }


async def test_set_level_updates_the_session() -> None:
    call = legacy("logging/setLevel", {"level": "error"})
    assert result_of(await dispatcher().handle(call)) == {}
    assert call.session is not None and call.session.log_level == "error"


@pytest.mark.parametrize("level", ["loud", None, 3])
async def test_set_level_with_an_invalid_level_is_invalid_params(level: object) -> None:
    call = legacy("logging/setLevel", {"level": level})
    before = call.session
    assert error_of(await dispatcher().handle(call))["code"] == -32602
    assert call.session is before


async def test_subscribe_and_unsubscribe_track_uris_in_the_session() -> None:
    d = dispatcher()
    call = legacy("resources/subscribe", {"uri": "config://app"})
    assert result_of(await d.handle(call)) == {}
    assert call.session is not None and call.session.subscriptions == {"config://app"}
    follow = legacy("resources/unsubscribe", {"uri": "config://app"}, session=call.session)
    assert result_of(await d.handle(follow)) == {}
    assert follow.session is not None and follow.session.subscriptions == frozenset()
    error = error_of(await d.handle(legacy("resources/subscribe", {})))
    assert error["code"] == -32602


@pytest.mark.parametrize("method", ["server/discover", "subscriptions/listen", "no/such/method"])
async def test_modern_only_and_unknown_methods_are_method_not_found(method: str) -> None:
    error = error_of(await dispatcher().handle(legacy(method, {"notifications": {}})))
    assert error["code"] == -32601


async def test_legacy_results_carry_no_modern_fields() -> None:
    d = dispatcher()
    cases: list[tuple[str, JSONObject]] = [
        ("tools/list", {}),
        ("resources/read", {"uri": "config://app"}),
        ("tools/call", {"name": "add", "arguments": {"a": 1, "b": 1}}),
    ]
    for method, params in cases:
        result = result_of(await d.handle(legacy(method, params)))
        assert not {"resultType", "ttlMs", "cacheScope", "_meta"} & set(result), method


async def test_tools_work_the_same_in_the_legacy_era() -> None:
    d = dispatcher()
    ok = result_of(await d.handle(legacy("tools/call", {"name": "add", "arguments": {"a": 40, "b": 2}})))
    assert ok == {
        "content": [{"type": "text", "text": "42"}],
        "structuredContent": {"result": 42},
        "isError": False,
    }
    bad = result_of(await d.handle(legacy("tools/call", {"name": "add", "arguments": {"a": "x"}})))
    assert bad["isError"] is True
    unknown = result_of(await d.handle(legacy("tools/call", {"name": "nope"})))
    assert unknown["isError"] is True


async def test_resource_not_found_is_32002_with_the_uri() -> None:
    error = error_of(await dispatcher().handle(legacy("resources/read", {"uri": "nope://x"})))
    assert error == {"code": -32002, "message": "Resource not found: nope://x", "data": {"uri": "nope://x"}}


@pytest.mark.parametrize(
    ("answer", "text"),
    [
        ({"action": "accept", "content": {"confirm": True, "note": "go"}}, "deploy: confirm=True note=go"),
        ({"action": "accept", "content": {"confirm": False}}, "deploy: confirm=False note="),
        ({"action": "decline"}, "deploy: decline"),
        ({"action": "cancel"}, "deploy: cancel"),
    ],
)
async def test_elicitation_is_a_real_server_request(answer: dict[str, object], text: str) -> None:
    outbound = RecordingOutbound(answers=[answer])
    call = legacy("tools/call", {"name": "confirm", "arguments": {"action": "deploy"}}, capabilities=ELICIT)
    call.outbound = outbound
    result = result_of(await dispatcher().handle(call))
    assert text_of(result) == text
    ((method, params),) = outbound.requests
    assert method == "elicitation/create"
    assert params["message"] == "Really deploy?"
    assert params["requestedSchema"]["required"] == ["confirm"]


async def test_several_questions_are_asked_in_order() -> None:
    outbound = RecordingOutbound(answers=[{"action": "accept", "content": {"x": "1"}}, {"action": "cancel"}])
    call = legacy("tools/call", {"name": "two_questions"}, capabilities=ELICIT, outbound=outbound)
    assert text_of(result_of(await dispatcher().handle(call))) == "accept:{'x': '1'} cancel:None"
    assert [params["message"] for _, params in outbound.requests] == ["First?", "Second?"]


async def test_missing_capability_in_legacy_is_an_error_result() -> None:
    outbound = RecordingOutbound()
    call = legacy("tools/call", {"name": "confirm", "arguments": {"action": "x"}}, outbound=outbound)
    result = result_of(await dispatcher().handle(call))
    assert result["isError"] is True
    assert text_of(result) == "This request needs the client capability: elicitation"
    assert outbound.requests == []


async def test_malformed_client_answer_is_an_error_result() -> None:
    outbound = RecordingOutbound(answers=[{"action": "sure"}])
    call = legacy("tools/call", {"name": "confirm", "arguments": {"action": "x"}}, capabilities=ELICIT)
    call.outbound = outbound
    result = result_of(await dispatcher().handle(call))
    assert text_of(result) == "The client answered elicitation/create with a malformed result"


async def test_connection_that_cannot_carry_requests_is_an_error_result() -> None:
    call = legacy("tools/call", {"name": "confirm", "arguments": {"action": "x"}}, capabilities=ELICIT)
    call.outbound = NoOutbound()
    result = result_of(await dispatcher().handle(call))
    assert text_of(result) == "This connection cannot carry the server request 'elicitation/create'"


async def test_sampling_and_roots_are_real_server_requests() -> None:
    sampled = {"role": "assistant", "content": {"type": "text", "text": "hello"}, "model": "m"}
    outbound = RecordingOutbound(answers=[sampled, {"roots": [{"uri": "file:///a"}]}])
    d = dispatcher()
    caps: JSONObject = {"sampling": {}, "roots": {}}
    sample = legacy("tools/call", {"name": "ask_model"}, capabilities=caps, outbound=outbound)
    assert result_of(await d.handle(sample))["structuredContent"] == {"result": "hello"}
    roots = legacy("tools/call", {"name": "roots"}, capabilities=caps, outbound=outbound)
    assert result_of(await d.handle(roots))["structuredContent"] == {"result": ["file:///a"]}
    assert [method for method, _ in outbound.requests] == ["sampling/createMessage", "roots/list"]


async def test_explicit_input_required_becomes_server_requests_in_legacy() -> None:
    answer = {"action": "accept", "content": {"choice": "a"}}
    outbound = RecordingOutbound(answers=[answer])
    params = {"name": "explicit", "arguments": {"step": 1}}
    call = legacy("tools/call", params, capabilities=ELICIT, outbound=outbound)
    result = result_of(await dispatcher().handle(call))
    assert text_of(result) == "state={'step': 1} pick={'choice': 'a'}"
    assert outbound.requests == [("elicitation/create", {"message": "Pick", "requestedSchema": {}})]


async def test_explicit_input_required_never_sends_what_the_client_did_not_declare() -> None:
    outbound = RecordingOutbound(answers=[{"action": "accept", "content": {}}])
    call = legacy("tools/call", {"name": "explicit", "arguments": {"step": 1}}, outbound=outbound)
    result = result_of(await dispatcher().handle(call))
    assert result["isError"] is True
    assert text_of(result) == "This request needs the client capability: elicitation"
    assert outbound.requests == []


async def test_handler_that_never_stops_asking_gives_up_after_ten_rounds() -> None:
    outbound = RecordingOutbound(answers=[{"action": "accept", "content": {}}] * 20)
    call = legacy("tools/call", {"name": "nagging"}, capabilities=ELICIT, outbound=outbound)
    result = result_of(await dispatcher().handle(call))
    assert result["isError"] is True
    assert text_of(result) == "The handler kept asking for input; giving up after 10 rounds"
    assert len(outbound.requests) == 10


async def test_legacy_prompt_and_resource_elicitation_use_server_requests() -> None:
    d = dispatcher()
    accept = {"action": "accept", "content": {"confirm": True}}
    outbound = RecordingOutbound(answers=[accept, accept])
    prompt = legacy("prompts/get", {"name": "approval"}, capabilities=ELICIT, outbound=outbound)
    assert result_of(await d.handle(prompt))["messages"][0]["content"]["text"] == "approved=accept"
    read = legacy("resources/read", {"uri": "vault://db"}, capabilities=ELICIT, outbound=outbound)
    assert result_of(await d.handle(read))["contents"][0]["text"] == "db unlocked"


async def test_progress_in_legacy_needs_a_token() -> None:
    outbound = RecordingOutbound()
    await dispatcher().handle(legacy("tools/call", {"name": "progress"}, progress_token=5, outbound=outbound))
    assert [p["progress"] for p in outbound.of("notifications/progress")] == [1, 2, 3.5]
    silent = RecordingOutbound()
    await dispatcher().handle(legacy("tools/call", {"name": "progress"}, outbound=silent))
    assert silent.notifications == []


async def test_legacy_log_messages_follow_the_session_level() -> None:
    everything = RecordingOutbound()
    await dispatcher().handle(legacy("tools/call", {"name": "chatty"}, outbound=everything))
    assert len(everything.of("notifications/message")) == 8

    errors_only = RecordingOutbound()
    call = legacy("tools/call", {"name": "chatty"}, log_level="error", outbound=errors_only)
    await dispatcher().handle(call)
    assert [m["data"] for m in errors_only.of("notifications/message")] == ["error message", "e"]


async def test_missing_capability_outside_tools_is_invalid_params_not_32021() -> None:
    # -32021 exists only in 2026-07-28; a 2025-era prompt that needs elicitation gets -32602.
    error = error_of(await dispatcher().handle(legacy("prompts/get", {"name": "approval", "arguments": {}})))
    assert error["code"] == -32602
    assert error["data"] == {"requiredCapabilities": {"elicitation": {}}}
