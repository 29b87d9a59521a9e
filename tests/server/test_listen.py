"""``subscriptions/listen``: acknowledgement first, only matching notifications, a final result."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import pytest
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from mcpserve.protocol.envelope import SERVER_INFO_KEY, SUBSCRIPTION_ID_KEY
from mcpserve.server.context import Context
from mcpserve.server.dispatch import Dispatcher
from mcpserve.server.listen import honoured_filters, wants
from mcpserve.types import JSONObject
from tests.server.support import build_server, dispatcher, error_of, legacy, modern, result_of

pytestmark = pytest.mark.anyio


@dataclass
class StreamOutbound:
    """Forwards every notification into a memory stream the test reads from."""

    send: MemoryObjectSendStream[tuple[str, JSONObject]]

    async def notify(self, method: str, params: JSONObject) -> None:
        await self.send.send((method, params))

    async def request(self, method: str, params: JSONObject) -> JSONObject:
        raise AssertionError("listen never sends requests")


@dataclass
class Listening:
    dispatcher: Dispatcher
    received: MemoryObjectReceiveStream[tuple[str, JSONObject]]
    response: list[JSONObject]

    async def next(self) -> tuple[str, JSONObject]:
        with anyio.fail_after(5):
            return await self.received.receive()


@asynccontextmanager
async def listening(filters: Any, request_id: str | int = "sub-1") -> AsyncIterator[Listening]:
    d = dispatcher()
    send, receive = anyio.create_memory_object_stream[tuple[str, JSONObject]](100)
    call = modern(
        "subscriptions/listen",
        {"notifications": filters},
        request_id=request_id,
        outbound=StreamOutbound(send),
    )
    response: list[JSONObject] = []

    async def run() -> None:
        response.append(await d.handle(call))

    async with send, receive, anyio.create_task_group() as group:
        group.start_soon(run)
        yield Listening(d, receive, response)
        d.closing.set()


async def test_first_message_is_the_acknowledgement_with_honoured_filters() -> None:
    filters = {
        "toolsListChanged": True,
        "promptsListChanged": False,
        "resourceSubscriptions": ["config://app"],
    }
    async with listening(filters) as stream:
        method, params = await stream.next()
        assert method == "notifications/subscriptions/acknowledged"
        assert params == {
            "_meta": {SUBSCRIPTION_ID_KEY: "sub-1"},
            "notifications": {"toolsListChanged": True, "resourceSubscriptions": ["config://app"]},
        }


async def test_only_requested_notifications_arrive_tagged_with_the_subscription() -> None:
    async with listening({"toolsListChanged": True, "resourceSubscriptions": ["config://app"]}, 7) as stream:
        await stream.next()
        server = stream.dispatcher.server
        await server.notify_prompts_changed()
        await server.notify_resources_changed()
        await server.notify_resource_updated("data://logo")
        await server.notify_tools_changed()
        assert await stream.next() == (
            "notifications/tools/list_changed",
            {"_meta": {SUBSCRIPTION_ID_KEY: 7}},
        )
        await server.notify_resource_updated("data://stats")
        await server.notify_resource_updated("config://app")
        assert await stream.next() == (
            "notifications/resources/updated",
            {"uri": "config://app", "_meta": {SUBSCRIPTION_ID_KEY: 7}},
        )


async def test_every_list_change_kind_can_be_requested() -> None:
    filters = {"toolsListChanged": True, "promptsListChanged": True, "resourcesListChanged": True}
    async with listening(filters) as stream:
        _, ack = await stream.next()
        assert ack["notifications"] == filters
        server = stream.dispatcher.server
        await server.notify_resources_changed()
        await server.notify_prompts_changed()
        await server.notify_tools_changed()
        methods = [(await stream.next())[0] for _ in range(3)]
        assert methods == [
            "notifications/resources/list_changed",
            "notifications/prompts/list_changed",
            "notifications/tools/list_changed",
        ]


async def test_tools_can_announce_changes_through_their_context() -> None:
    async with listening({"toolsListChanged": True, "resourceSubscriptions": ["a://1"]}) as stream:
        await stream.next()
        server = stream.dispatcher.server
        context = Context(modern("tools/call"), server)
        await context.notify_prompts_changed()
        await context.notify_resources_changed()
        await context.notify_tools_changed()
        await context.notify_resource_updated("a://1")
        assert (await stream.next())[0] == "notifications/tools/list_changed"
        assert (await stream.next())[1]["uri"] == "a://1"


async def test_server_shutdown_ends_the_stream_with_a_tagged_result() -> None:
    async with listening({"toolsListChanged": True}, "sub-9") as stream:
        await stream.next()
        stream.dispatcher.closing.set()
    (response,) = stream.response
    assert response["id"] == "sub-9"
    result = result_of(response)
    assert result["_meta"][SUBSCRIPTION_ID_KEY] == "sub-9"
    assert SERVER_INFO_KEY in result["_meta"]
    assert result["resultType"] == "complete"


async def test_empty_filters_are_acknowledged_with_nothing_honoured() -> None:
    async with listening({}) as stream:
        assert (await stream.next())[1]["notifications"] == {}


@pytest.mark.parametrize(
    "filters",
    [
        None,
        "all",
        ["toolsListChanged"],
        {"resourceSubscriptions": "config://app"},
        {"resourceSubscriptions": [1]},
    ],
)
async def test_malformed_filters_are_invalid_params(filters: Any) -> None:
    d = dispatcher()
    params = {"notifications": filters} if filters is not None else {}
    with anyio.fail_after(5):
        error = error_of(await d.handle(modern("subscriptions/listen", params)))
    assert error["code"] == -32602


def test_filter_helpers() -> None:
    honoured = honoured_filters({"toolsListChanged": True, "promptsListChanged": "yes", "unknownFlag": True})
    assert honoured == {"toolsListChanged": True}
    assert wants(honoured, {"method": "notifications/tools/list_changed", "params": {}})
    assert not wants(honoured, {"method": "notifications/prompts/list_changed", "params": {}})
    assert not wants(honoured, {"method": "notifications/resources/updated", "params": {"uri": "a://1"}})


async def test_listen_is_not_part_of_the_legacy_era() -> None:
    error = error_of(
        await Dispatcher(build_server()).handle(legacy("subscriptions/listen", {"notifications": {}}))
    )
    assert error["code"] == -32601
