"""Lists are built once per change and scope set: a page is a slice, never a walk of the registry."""

from __future__ import annotations

import pytest

from mcpserve.principal import Principal
from mcpserve.server import app as app_module
from mcpserve.server.app import MCPServer
from mcpserve.server.tools import Tool
from tests.server.support import dispatcher, modern, result_of

pytestmark = pytest.mark.anyio

READER = Principal("reader", frozenset({"read"}))
OTHER_READER = Principal("other", frozenset({"read"}))


def _server(size: int) -> MCPServer:
    server = MCPServer()
    for n in range(size):
        server.add_tool(lambda text: text, name=f"t{n}", scopes=("read",) if n % 2 else ())
    return server


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count how often the tools list is built from the registry."""
    builds: list[int] = []
    original = MCPServer.visible_tools

    def counted(self: MCPServer, principal: Principal | None) -> list[Tool]:
        builds.append(1)
        return original(self, principal)

    monkeypatch.setitem(app_module._LISTERS, "tools", counted)
    return builds


async def test_a_walk_builds_the_list_once_per_scope_set(monkeypatch: pytest.MonkeyPatch) -> None:
    server = _server(1000)
    builds = _counting(monkeypatch)
    d = dispatcher(server=server)
    seen, cursor = [], None
    while True:
        params: dict[str, str] = {"cursor": cursor} if cursor else {}
        result = result_of(await d.handle(modern("tools/list", params, principal=READER)))
        seen += [t["name"] for t in result["tools"]]
        cursor = result.get("nextCursor")
        if cursor is None:
            break
    assert len(seen) == 1000
    assert len(builds) == 1
    # Another caller with the same scopes shares it; no principal is another audience.
    await d.handle(modern("tools/list", principal=OTHER_READER))
    assert len(builds) == 1
    anonymous = result_of(await d.handle(modern("tools/list")))
    assert len(builds) == 2
    assert len(anonymous["tools"]) == 100


async def test_every_change_is_seen() -> None:
    server = _server(3)
    d = dispatcher(server=server)

    async def names(principal: Principal | None = READER) -> list[str]:
        return [
            t["name"] for t in result_of(await d.handle(modern("tools/list", principal=principal)))["tools"]
        ]

    assert await names() == ["t0", "t1", "t2"]
    server.add_tool(lambda: 1, name="added")
    assert await names() == ["t0", "t1", "t2", "added"]
    server.remove_tool("t0")
    assert await names() == ["t1", "t2", "added"]
    server.set_tool_scopes("t2", ["admin"])
    assert await names() == ["t1", "added"]
    server.set_tool_scopes("t*", ["admin"])
    assert await names() == ["added"]
    server.add_tool(lambda: 1, name="t9")  # a pattern rule also covers tools added later
    assert await names() == ["added"]
    assert await names(Principal("admin", frozenset({"admin"}))) == ["t1", "t2", "added", "t9"]
