"""`python -m bench.catalogue`: what one tools/list page costs as the catalogue grows.

A gateway's catalogue is the sum of its upstreams', easily thousands of tools. Each page must
cost the same whatever the catalogue's size: the filtered list is built once per change and scope
set, and a page is a slice of it. This drives the dispatcher in-process (no sockets) with a
catalogue of N forwarded-size tools and times, per N:

- ``first page``: ``tools/list`` without a cursor, the list already built (the steady state);
- ``walk / page``: a full walk with cursors, divided by its number of pages;
- ``after change``: the first page right after a tool was added (the one rebuild per change).

    .venv/bin/python -m bench.catalogue                      # 100, 1,000, 10,000 tools
    .venv/bin/python -m bench.catalogue --sizes 100,10000 --repeat 200
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from mcpserve.principal import Principal
from mcpserve.protocol.envelope import RequestMeta
from mcpserve.protocol.jsonrpc import Request
from mcpserve.server.app import MCPServer
from mcpserve.server.call import Call
from mcpserve.server.dispatch import Dispatcher

_PRINCIPAL = Principal("bench", frozenset({"read"}))


def _server(size: int) -> MCPServer:
    server = MCPServer("catalogue-bench")

    def tool(text: str) -> str:
        """Echo the text back (a definition about the size of a real tool's)."""
        return text

    for n in range(size):
        server.add_tool(tool, name=f"upstream{n % 7}__tool_{n}", scopes=("read",) if n % 3 else ())
    return server


def _call(cursor: str | None) -> Call:
    params: dict[str, Any] = {"cursor": cursor} if cursor else {}
    meta = RequestMeta("2026-07-28", {}, None, None, None)
    return Call.modern(Request(1, "tools/list", params), meta, principal=_PRINCIPAL)


async def _page(d: Dispatcher, cursor: str | None = None) -> dict[str, Any]:
    return (await d.handle(_call(cursor)))["result"]  # type: ignore[no-any-return]


async def _timed(repeat: int, step: Any) -> float:
    """Median microseconds of ``step()`` over ``repeat`` runs."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        await step()
        samples.append((time.perf_counter() - start) * 1e6)
    return statistics.median(samples)


async def measure(size: int, repeat: int) -> dict[str, float]:
    server = _server(size)
    d = Dispatcher(server)
    await _page(d)  # build once

    async def walk() -> None:
        cursor = None
        while True:
            result = await _page(d, cursor)
            cursor = result.get("nextCursor")
            if cursor is None:
                return

    pages = 1
    result = await _page(d)
    while "nextCursor" in result:
        result = await _page(d, result["nextCursor"])
        pages += 1

    async def after_change() -> None:
        server.remove_tool("upstream0__tool_0")
        server.add_tool(lambda text: text, name="upstream0__tool_0")
        await _page(d)

    return {
        "tools": size,
        "pages": pages,
        "first_page_us": await _timed(repeat, lambda: _page(d)),
        "walk_per_page_us": await _timed(max(1, repeat // pages), walk) / pages,
        "after_change_us": await _timed(max(3, repeat // 20), after_change),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--repeat", type=int, default=500)
    args = parser.parse_args(argv)
    rows = [asyncio.run(measure(int(size), args.repeat)) for size in args.sizes.split(",")]
    base = rows[0]["first_page_us"]
    heads = ("tools", "pages", "first page µs", "walk µs/page", "after change µs", "page vs first")
    widths = (7, 6, 14, 13, 16, 14)
    print(" ".join(f"{head:>{width}}" for head, width in zip(heads, widths, strict=True)))
    for row in rows:
        ratio = row["first_page_us"] / base
        cells = (row["first_page_us"], row["walk_per_page_us"], row["after_change_us"])
        timings = " ".join(f"{value:>{width}.1f}" for value, width in zip(cells, widths[2:5], strict=True))
        print(f"{row['tools']:>7} {row['pages']:>6} {timings} {ratio:>13.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
