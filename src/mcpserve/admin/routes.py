"""The console's HTTP routes: the page, its two assets and the JSON API, GET (and HEAD) only.

Every answer is ``no-store`` and carries a Content-Security-Policy that allows only this
server's own stylesheet, script and API (no inline code, no other origin, never framed).
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any, Final

import orjson

from mcpserve.admin.access import AdminAccess, Allowed
from mcpserve.admin.console import Console
from mcpserve.admin.page import display_figures, layout_signature, render_page, render_refusal
from mcpserve.transports.http.stream import Send

__all__ = ["ADMIN_PREFIX", "AdminRoutes"]

ADMIN_PREFIX: Final = "/admin"
_CSP: Final = (
    b"default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
    b"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_SECURITY: Final = (
    (b"cache-control", b"no-store"),
    (b"content-security-policy", _CSP),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
)
_HTML: Final = b"text/html; charset=utf-8"
_JSON: Final = b"application/json"


def _asset(name: str, content_type: bytes) -> tuple[bytes, bytes]:
    return files("mcpserve.admin").joinpath("static", name).read_bytes(), content_type


_ASSETS: Final = {
    "/admin/assets/console.css": _asset("console.css", b"text/css; charset=utf-8"),
    "/admin/assets/console.js": _asset("console.js", b"text/javascript; charset=utf-8"),
    "/admin/assets/favicon.svg": _asset("favicon.svg", b"image/svg+xml"),
}


async def _answer(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes,
    head: bool,
    extra: tuple[tuple[bytes, bytes], ...] = (),
) -> None:
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        *_SECURITY,
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})


class AdminRoutes:
    """Answers every path under /admin for one listener."""

    def __init__(self, console: Console, access: AdminAccess) -> None:
        self.console = console
        self.access = access

    async def __call__(self, scope: dict[str, Any], send: Send) -> None:
        path, method = scope["path"], scope["method"]
        head = method == "HEAD"
        wants_json = path.startswith("/admin/api/")
        if method not in ("GET", "HEAD"):
            await _answer(
                send, 405, b'{"error":"method not allowed"}', _JSON, head, ((b"allow", b"GET, HEAD"),)
            )
            return
        if path in _ASSETS:  # static and public: the refusal page needs its stylesheet too
            body, content_type = _ASSETS[path]
            await _answer(send, 200, body, content_type, head)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        client = scope.get("client")
        decision = await self.access.decide(
            headers, client[0] if client else None, scope.get("query_string", b"")
        )
        if not isinstance(decision, Allowed):
            if wants_json:
                body = orjson.dumps({"error": decision.message})
                await _answer(send, decision.status, body, _JSON, head, decision.headers)
            else:
                page = render_refusal(decision.status, decision.message).encode()
                await _answer(send, decision.status, page, _HTML, head, decision.headers)
            return
        if path in (ADMIN_PREFIX, ADMIN_PREFIX + "/"):
            data = await self.console.overview(decision.principal)
            page = render_page(data, self.console.configuration()).encode()
            await _answer(send, 200, page, _HTML, head)
        elif path == "/admin/api/overview":
            data = await self.console.overview(decision.principal)
            data["display"] = display_figures(data)
            data["layout"] = layout_signature(data)
            await _answer(send, 200, orjson.dumps(data), _JSON, head)
        elif path == "/admin/api/config":
            await _answer(send, 200, orjson.dumps(self.console.configuration()), _JSON, head)
        else:
            await _answer(send, 404, b'{"error":"not found"}', _JSON, head)
