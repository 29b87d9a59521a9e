"""What a person with a browser sees: ``GET /`` and ``GET /mcp`` asking for HTML.

Static text only (nothing from the request is echoed, so nothing to escape), served before the
Host/Origin guard and authentication because it reveals nothing but the endpoint's path.
"""

from __future__ import annotations

import html
from typing import Any

from mcpserve.transports.http.stream import Send

__all__ = ["LandingPages", "send_page", "wants_html"]

_SPEC = "https://modelcontextprotocol.io/specification"
_PAGE = (
    '<!doctype html>\n<html lang="en"><meta charset="utf-8"><title>MCP server</title>\n'
    "<h1>{title}</h1>\n<p>{text}</p>\n"
    f'<p>The protocol: <a href="{_SPEC}">{_SPEC}</a>. Liveness: <code>/health</code>, '
    "readiness: <code>/ready</code>.</p>\n</html>\n"
)


def wants_html(scope: dict[str, Any]) -> bool:
    """A browser navigating here: it asks for HTML and not for an event stream."""
    for key, value in scope["headers"]:
        if key == b"accept":
            return b"text/html" in value and b"text/event-stream" not in value
    return False


class LandingPages:
    """The two pages, rendered once for the endpoint's path."""

    def __init__(self, path: str) -> None:
        endpoint = html.escape(path)
        self.root = _PAGE.format(
            title="This is an MCP server",
            text=f"Its endpoint is <code>{endpoint}</code>: point an MCP client at this server's "
            f"address followed by <code>{endpoint}</code> (Streamable HTTP).",
        ).encode()
        self.endpoint = _PAGE.format(
            title="This is an MCP endpoint, not a web page",
            text="MCP clients POST JSON-RPC messages here and may open an event stream with GET "
            "(<code>Accept: text/event-stream</code>); a browser cannot use it directly. Configure "
            "this URL in an MCP client instead.",
        ).encode()


async def send_page(send: Send, status: int, body: bytes, method: str) -> None:
    headers = [
        (b"content-type", b"text/html; charset=utf-8"),
        (b"content-length", b"%d" % len(body)),
        (b"cache-control", b"no-store"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})
