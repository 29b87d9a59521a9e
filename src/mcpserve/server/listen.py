"""``subscriptions/listen`` (2026-07-28): acknowledge, then forward matching change notifications.

The stream lives until the client goes away (the transport cancels the request) or the server
shuts down (``closing`` is set), in which case the caller sends the final result.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import anyio

from mcpserve.errors import InvalidParams
from mcpserve.protocol.envelope import SUBSCRIPTION_ID_KEY
from mcpserve.server.call import Call
from mcpserve.types import JSONObject

if TYPE_CHECKING:
    from mcpserve.server.app import MCPServer

__all__ = ["listen", "honoured_filters", "wants"]

_FLAGS: Final = {
    "toolsListChanged": "notifications/tools/list_changed",
    "promptsListChanged": "notifications/prompts/list_changed",
    "resourcesListChanged": "notifications/resources/list_changed",
}


def honoured_filters(filters: JSONObject) -> JSONObject:
    """The subset of the requested notification types this server will send."""
    honoured: JSONObject = {flag: True for flag in _FLAGS if filters.get(flag) is True}
    uris = filters.get("resourceSubscriptions")
    if uris is not None:
        if not isinstance(uris, list) or not all(isinstance(u, str) for u in uris):
            raise InvalidParams("notifications.resourceSubscriptions must be a list of URIs")
        honoured["resourceSubscriptions"] = uris
    return honoured


def wants(honoured: JSONObject, event: JSONObject) -> bool:
    """Whether a listener with these filters receives this bus event."""
    method = event.get("method")
    if method == "notifications/resources/updated":
        return event.get("params", {}).get("uri") in honoured.get("resourceSubscriptions", ())
    return any(honoured.get(flag) and method == name for flag, name in _FLAGS.items())


async def listen(call: Call, filters: JSONObject, server: MCPServer, closing: anyio.Event) -> None:
    honoured = honoured_filters(filters)
    for uri in honoured.get("resourceSubscriptions", ()):
        await server.subscribed(uri)
    tag = {SUBSCRIPTION_ID_KEY: call.id}
    # Subscribe before acknowledging so that nothing published after the ack is missed.
    async with server.bus.subscribe() as events, anyio.create_task_group() as group:

        async def stop_when_closing() -> None:
            await closing.wait()
            group.cancel_scope.cancel()

        group.start_soon(stop_when_closing)
        await call.outbound.notify(
            "notifications/subscriptions/acknowledged", {"_meta": tag, "notifications": honoured}
        )
        async for event in events:
            if wants(honoured, event):
                params = {**event.get("params", {}), "_meta": tag}
                await call.outbound.notify(event["method"], params)
