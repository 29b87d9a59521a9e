"""2026-07-28 multi-round-trip requests: ``input_required``, retries, and the sealed ``requestState``."""

from __future__ import annotations

from typing import Any

import pytest

from mcpserve.principal import Principal
from mcpserve.protocol.envelope import SERVER_INFO_KEY
from mcpserve.types import JSONObject
from tests.server.support import ALL_CAPABILITIES, ELICIT, dispatcher, error_of, modern, result_of, text_of
from tests.support.clock import FakeClock

pytestmark = pytest.mark.anyio

ACCEPT = {"action": "accept", "content": {"confirm": True, "note": "ok"}}


def _confirm(arguments: JSONObject | None = None, **params: Any) -> JSONObject:
    return {"name": "confirm", "arguments": arguments or {"action": "deploy"}, **params}


async def _first_round(d: Any, params: JSONObject | None = None, **options: Any) -> JSONObject:
    options.setdefault("capabilities", ELICIT)
    return result_of(await d.handle(modern("tools/call", params or _confirm(), **options)))


async def test_unanswered_question_ends_the_round_with_input_required() -> None:
    result = await _first_round(dispatcher())
    assert set(result) == {"resultType", "inputRequests", "requestState", "_meta"}
    assert result["resultType"] == "input_required"
    assert result["_meta"] == {
        SERVER_INFO_KEY: {"name": "test-server", "version": "9.9.9", "title": "Test Server"}
    }
    (key,) = result["inputRequests"]
    request = result["inputRequests"][key]
    assert request["method"] == "elicitation/create"
    assert request["params"]["message"] == "Really deploy?"
    schema = request["params"]["requestedSchema"]
    assert schema["type"] == "object"
    assert schema["properties"]["confirm"] == {"type": "boolean", "description": "Go ahead?"}
    assert schema["required"] == ["confirm"]
    assert isinstance(result["requestState"], str) and result["requestState"]


async def test_retry_with_the_answer_and_state_completes() -> None:
    d = dispatcher()
    first = await _first_round(d)
    (key,) = first["inputRequests"]
    retry = _confirm(inputResponses={key: ACCEPT}, requestState=first["requestState"])
    result = result_of(await d.handle(modern("tools/call", retry, request_id=2, capabilities=ELICIT)))
    assert result["resultType"] == "complete"
    assert result["isError"] is False
    assert text_of(result) == "deploy: confirm=True note=ok"


@pytest.mark.parametrize("action", ["decline", "cancel"])
async def test_decline_and_cancel_reach_the_tool(action: str) -> None:
    d = dispatcher()
    first = await _first_round(d)
    (key,) = first["inputRequests"]
    retry = _confirm(inputResponses={key: {"action": action}}, requestState=first["requestState"])
    result = result_of(await d.handle(modern("tools/call", retry, capabilities=ELICIT)))
    assert text_of(result) == f"deploy: {action}"


async def test_answers_from_earlier_rounds_travel_in_the_sealed_state() -> None:
    d = dispatcher()
    params: JSONObject = {"name": "two_questions", "arguments": {}}
    first = await _first_round(d, params)
    assert list(first["inputRequests"]) == ["elicitation-1"]
    answer_one = {"action": "accept", "content": {"x": "1"}}
    second = await _first_round(
        d, {**params, "inputResponses": {"elicitation-1": answer_one}, "requestState": first["requestState"]}
    )
    assert second["resultType"] == "input_required"
    assert list(second["inputRequests"]) == ["elicitation-2"]
    assert second["requestState"] != first["requestState"]
    # Only the new answer is sent; the first one comes back out of the sealed state.
    answer_two = {"action": "decline"}
    third = await _first_round(
        d, {**params, "inputResponses": {"elicitation-2": answer_two}, "requestState": second["requestState"]}
    )
    assert text_of(third) == "accept:{'x': '1'} decline:None"


async def test_retry_without_the_answer_asks_again_instead_of_failing() -> None:
    d = dispatcher()
    first = await _first_round(d)
    again = await _first_round(d, _confirm(requestState=first["requestState"]))
    assert again["resultType"] == "input_required"
    assert list(again["inputRequests"]) == list(first["inputRequests"])


@pytest.mark.parametrize(
    "answer",
    [
        {"action": "maybe"},
        {"action": "accept", "content": "yes"},
        "accept",
    ],
)
async def test_malformed_answers_are_treated_as_missing(answer: Any) -> None:
    d = dispatcher()
    first = await _first_round(d)
    (key,) = first["inputRequests"]
    again = await _first_round(d, _confirm(inputResponses={key: answer}, requestState=first["requestState"]))
    assert again["resultType"] == "input_required"


async def test_unknown_extra_answers_are_ignored() -> None:
    d = dispatcher()
    first = await _first_round(d)
    (key,) = first["inputRequests"]
    responses = {key: ACCEPT, "unrelated": {"action": "accept"}}
    result = await _first_round(d, _confirm(inputResponses=responses, requestState=first["requestState"]))
    assert text_of(result) == "deploy: confirm=True note=ok"


async def test_answer_that_does_not_fit_the_model_is_an_error_result() -> None:
    d = dispatcher()
    first = await _first_round(d)
    (key,) = first["inputRequests"]
    bad = {"action": "accept", "content": {"confirm": "perhaps"}}
    result = await _first_round(d, _confirm(inputResponses={key: bad}, requestState=first["requestState"]))
    assert result["isError"] is True
    assert text_of(result).startswith("The answer did not match the requested form: confirm:")


def _tamper_append(state: str) -> str:
    return state + "-TAMPERED"


def _tamper_flip(state: str) -> str:
    index = len(state) // 2
    replacement = "A" if state[index] != "A" else "B"
    return state[:index] + replacement + state[index + 1 :]


@pytest.mark.parametrize("tamper", [_tamper_append, _tamper_flip, lambda s: s[:-4], lambda s: "v1.AAAA"])
async def test_tampered_request_state_is_invalid_params(tamper: Any) -> None:
    d = dispatcher()
    first = await _first_round(d)
    (key,) = first["inputRequests"]
    retry = _confirm(inputResponses={key: ACCEPT}, requestState=tamper(first["requestState"]))
    error = error_of(await d.handle(modern("tools/call", retry, capabilities=ELICIT)))
    assert error["code"] == -32602
    assert error["message"] == "requestState is invalid or expired; retry the request without it"


@pytest.mark.parametrize("state", [17, None, {"a": 1}, ""])
async def test_non_string_or_empty_request_state_is_invalid_params(state: Any) -> None:
    params = _confirm(requestState=state)
    response = await dispatcher().handle(modern("tools/call", params, capabilities=ELICIT))
    if state is None:
        assert result_of(response)["resultType"] == "input_required"  # absent state: a fresh first round
    else:
        assert error_of(response)["code"] == -32602


async def test_expired_request_state_is_invalid_params() -> None:
    clock = FakeClock(1_000_000.0)
    d = dispatcher(clock=clock, request_state_ttl=60)
    first = await _first_round(d)
    (key,) = first["inputRequests"]
    retry = _confirm(inputResponses={key: ACCEPT}, requestState=first["requestState"])
    clock.now += 59
    assert (
        result_of(await d.handle(modern("tools/call", retry, capabilities=ELICIT)))["resultType"]
        == "complete"
    )
    clock.now += 2
    error = error_of(await d.handle(modern("tools/call", retry, capabilities=ELICIT)))
    assert error["code"] == -32602


async def test_request_state_is_bound_to_the_principal() -> None:
    d = dispatcher()
    first = await _first_round(d, principal=Principal("alice"))
    (key,) = first["inputRequests"]
    retry = _confirm(inputResponses={key: ACCEPT}, requestState=first["requestState"])
    as_bob = await d.handle(modern("tools/call", retry, capabilities=ELICIT, principal=Principal("bob")))
    assert error_of(as_bob)["code"] == -32602
    anonymous = await d.handle(modern("tools/call", retry, capabilities=ELICIT))
    assert error_of(anonymous)["code"] == -32602
    as_alice = await d.handle(modern("tools/call", retry, capabilities=ELICIT, principal=Principal("alice")))
    assert result_of(as_alice)["resultType"] == "complete"


async def test_request_state_is_bound_to_the_arguments() -> None:
    d = dispatcher()
    first = await _first_round(d)
    (key,) = first["inputRequests"]
    retry = _confirm({"action": "destroy"}, inputResponses={key: ACCEPT}, requestState=first["requestState"])
    assert error_of(await d.handle(modern("tools/call", retry, capabilities=ELICIT)))["code"] == -32602


async def test_request_state_is_bound_to_the_tool_name() -> None:
    d = dispatcher()
    first = await _first_round(d, {"name": "two_questions", "arguments": {}})
    retry = {
        "name": "nagging",
        "arguments": {},
        "inputResponses": {"elicitation-1": ACCEPT},
        "requestState": first["requestState"],
    }
    assert error_of(await d.handle(modern("tools/call", retry, capabilities=ELICIT)))["code"] == -32602


async def test_request_state_is_bound_to_the_method() -> None:
    d = dispatcher()
    first = result_of(await d.handle(modern("prompts/get", {"name": "approval"}, capabilities=ELICIT)))
    retry = {"name": "approval", "arguments": {}, "requestState": first["requestState"]}
    assert error_of(await d.handle(modern("tools/call", retry, capabilities=ELICIT)))["code"] == -32602


async def test_request_state_from_another_key_ring_does_not_open() -> None:
    first = await _first_round(dispatcher())
    (key,) = first["inputRequests"]
    from mcpserve.protocol.sealing import KeyRing  # noqa: PLC0415

    other = dispatcher()
    other.keyring = KeyRing.ephemeral()
    retry = _confirm(inputResponses={key: ACCEPT}, requestState=first["requestState"])
    assert error_of(await other.handle(modern("tools/call", retry, capabilities=ELICIT)))["code"] == -32602


@pytest.mark.parametrize(
    ("tool", "capability"),
    [("confirm", "elicitation"), ("ask_model", "sampling"), ("roots", "roots")],
)
async def test_missing_client_capability_is_32021_shaped_like_capabilities(
    tool: str, capability: str
) -> None:
    params = {"name": tool, "arguments": {"action": "x"} if tool == "confirm" else {}}
    others = {k: v for k, v in ALL_CAPABILITIES.items() if k != capability}
    error = error_of(await dispatcher().handle(modern("tools/call", params, capabilities=others)))
    assert error["code"] == -32021
    assert error["data"] == {"requiredCapabilities": {capability: {}}}
    assert capability in error["message"]


async def test_sampling_and_roots_round_trips() -> None:
    d = dispatcher()
    first = await _first_round(d, {"name": "ask_model", "arguments": {}}, capabilities=ALL_CAPABILITIES)
    request = first["inputRequests"]["sampling-1"]
    assert request == {
        "method": "sampling/createMessage",
        "params": {
            "messages": [{"role": "user", "content": {"type": "text", "text": "Say hi"}}],
            "maxTokens": 10,
            "systemPrompt": "Be brief",
            "temperature": 0.1,
        },
    }
    sampled = {"role": "assistant", "content": {"type": "text", "text": "hi"}, "model": "m"}
    done = await _first_round(
        d,
        {
            "name": "ask_model",
            "arguments": {},
            "inputResponses": {"sampling-1": sampled},
            "requestState": first["requestState"],
        },
        capabilities=ALL_CAPABILITIES,
    )
    assert done["structuredContent"] == {"result": "hi"}

    first = await _first_round(d, {"name": "roots", "arguments": {}}, capabilities=ALL_CAPABILITIES)
    assert first["inputRequests"] == {"roots-1": {"method": "roots/list", "params": {}}}
    listed = {"roots": [{"uri": "file:///work", "name": "work"}]}
    done = await _first_round(
        d,
        {
            "name": "roots",
            "arguments": {},
            "inputResponses": {"roots-1": listed},
            "requestState": first["requestState"],
        },
        capabilities=ALL_CAPABILITIES,
    )
    assert done["structuredContent"] == {"result": ["file:///work"]}


async def test_explicit_input_required_carries_the_tool_state_between_rounds() -> None:
    d = dispatcher()
    first = await _first_round(d, {"name": "explicit", "arguments": {"step": 3}})
    assert first["resultType"] == "input_required"
    assert list(first["inputRequests"]) == ["pick"]
    answer = {"action": "accept", "content": {"choice": "b"}}
    done = await _first_round(
        d,
        {
            "name": "explicit",
            "arguments": {"step": 3},
            "inputResponses": {"pick": answer},
            "requestState": first["requestState"],
        },
    )
    assert text_of(done) == "state={'step': 3} pick={'choice': 'b'}"


async def test_explicit_input_required_still_needs_the_capability() -> None:
    error = error_of(await dispatcher().handle(modern("tools/call", {"name": "nagging"})))
    assert error["code"] == -32021
    assert error["data"] == {"requiredCapabilities": {"elicitation": {}}}


async def test_prompts_get_can_ask_for_input() -> None:
    d = dispatcher()
    first = result_of(await d.handle(modern("prompts/get", {"name": "approval"}, capabilities=ELICIT)))
    assert first["resultType"] == "input_required"
    assert "ttlMs" not in first
    retry = {
        "name": "approval",
        "inputResponses": {"elicitation-1": ACCEPT},
        "requestState": first["requestState"],
    }
    done = result_of(await d.handle(modern("prompts/get", retry, capabilities=ELICIT)))
    assert done["resultType"] == "complete"
    assert done["messages"] == [{"role": "user", "content": {"type": "text", "text": "approved=accept"}}]


async def test_resources_read_can_ask_for_input_and_gets_cache_hints_only_when_complete() -> None:
    d = dispatcher()
    first = result_of(await d.handle(modern("resources/read", {"uri": "vault://db"}, capabilities=ELICIT)))
    assert first["resultType"] == "input_required"
    assert "ttlMs" not in first and "cacheScope" not in first
    retry = {
        "uri": "vault://db",
        "inputResponses": {"elicitation-1": ACCEPT},
        "requestState": first["requestState"],
    }
    done = result_of(await d.handle(modern("resources/read", retry, capabilities=ELICIT)))
    assert done["contents"] == [{"uri": "vault://db", "mimeType": "text/plain", "text": "db unlocked"}]
    assert (done["ttlMs"], done["cacheScope"]) == (0, "private")
    other_uri = {"uri": "vault://other", "requestState": first["requestState"]}
    assert (
        error_of(await d.handle(modern("resources/read", other_uri, capabilities=ELICIT)))["code"] == -32602
    )


async def test_resource_input_required_without_capability_is_32021() -> None:
    error = error_of(await dispatcher().handle(modern("resources/read", {"uri": "vault://db"})))
    assert error["code"] == -32021
    assert error["data"] == {"requiredCapabilities": {"elicitation": {}}}
