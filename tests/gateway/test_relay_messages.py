"""What crosses the bus between gateway replicas: a failure on the replica running a call is raised
as the same failure on the replica the client talks to."""

from __future__ import annotations

import pytest

from mcpserve.errors import InvalidParams, ToolError
from mcpserve.gateway.relay import _outcome, failure_message, gone, outcome_message
from mcpserve.gateway.rpc import UpstreamFailure, UpstreamRpcError
from mcpserve.server.context import InputRequired


@pytest.mark.parametrize(
    "failure",
    [
        UpstreamRpcError(-32602, "bad arguments"),
        TimeoutError("Upstream 'x' did not answer in time"),
        InvalidParams("inputResponses lacks an answer for k"),
        UpstreamFailure("Upstream 'x' exited (code -9) during the call"),
        gone("x"),
    ],
)
def test_a_failure_crosses_the_bus_as_itself(failure: Exception) -> None:
    with pytest.raises(type(failure)) as raised:
        _outcome(failure_message(failure))
    assert str(raised.value) == str(failure)
    if isinstance(failure, UpstreamRpcError):
        assert isinstance(raised.value, UpstreamRpcError) and raised.value.code == -32602


def test_results_and_questions_cross_the_bus_and_garbage_is_an_error() -> None:
    assert _outcome(outcome_message({"content": []})) == {"content": []}
    question = InputRequired({"k": {"method": "elicitation/create", "params": {}}}, {"gateway": "t"})
    assert _outcome(outcome_message(question)) == question
    with pytest.raises(ToolError, match="could not resume"):
        _outcome({"error": "not an object"})
