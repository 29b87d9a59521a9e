"""The benchmark's echo tool on the official Python SDK (`mcp` 2.3.0 `MCPServer`).

    python bench/apps/sdk_echo.py --port 8000 --mode stateful    # 2025-era sessions, JSON responses
    python bench/apps/sdk_echo.py --port 8000 --mode stateless   # for 2026-07-28 requests

One SDK app serves both eras on /mcp: a request whose `MCP-Protocol-Version` header names a
revision other than the 2025-era handshake versions (e.g. 2026-07-28) goes to the SDK's modern,
per-request handler (`handle_modern_request`) whatever the mode; the mode only changes the 2025
path (`stateful`: `initialize` opens a session with `Mcp-Session-Id`; `stateless`: no sessions).
Both use `json_response=True`. Served by uvicorn with uvloop + httptools, one worker, no access
log, SDK logging at WARNING (it logs every new session at INFO otherwise).
"""

from __future__ import annotations

import argparse
import os

import uvicorn
from mcp.server import MCPServer

app = MCPServer("echo", log_level="WARNING")


def echo_sync(text: str) -> str:
    """Echo the text back."""
    return text


async def echo_async(text: str) -> str:
    """Echo the text back."""
    return text


# BENCH_ECHO=async (bench --tool async) serves the same tool as a coroutine: no worker thread.
app.add_tool(echo_async if os.environ.get("BENCH_ECHO", "sync") == "async" else echo_sync, name="echo")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--mode", choices=["stateful", "stateless"], default="stateful")
    args = parser.parse_args()
    asgi = app.streamable_http_app(
        json_response=True, stateless_http=args.mode == "stateless", host=args.host
    )
    uvicorn.run(
        asgi,
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        workers=1,
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
