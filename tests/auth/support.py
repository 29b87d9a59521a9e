"""Requests and assertions shared by the authentication tests."""

from __future__ import annotations

import re
from typing import Any

from tests.support.asgi import META, MODERN_HEADERS, Reply, request, rpc

_PARAM = re.compile(r'(\w+)="([^"]*)"')


def challenge(reply: Reply) -> dict[str, str]:
    """The parameters of the reply's single Bearer challenge."""
    header = reply.headers["www-authenticate"]
    assert header.startswith("Bearer ")
    return dict(_PARAM.findall(header))


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def modern_headers(method: str, name: str | None = None, **extra: str) -> dict[str, str]:
    headers = {**MODERN_HEADERS, "mcp-method": method, **extra}
    if name is not None:
        headers["mcp-name"] = name
    return headers


def tool_call(
    name: str, arguments: dict[str, Any] | None = None, request_id: int = 1, **params: Any
) -> bytes:
    return rpc(
        "tools/call", {"name": name, "arguments": arguments or {}, "_meta": META, **params}, request_id
    )


async def call_tool(
    app: Any, name: str, token: str | None, arguments: dict[str, Any] | None = None, **options: Any
) -> Reply:
    headers = {**modern_headers("tools/call", name), **(bearer(token) if token else {})}
    headers.update(options.pop("headers", {}))
    return await request(
        app, "POST", headers=headers, body=tool_call(name, arguments, **options.pop("params", {})), **options
    )


async def list_tools(app: Any, token: str) -> Reply:
    body = rpc("tools/list", {"_meta": META})
    return await request(app, "POST", headers={**modern_headers("tools/list"), **bearer(token)}, body=body)
