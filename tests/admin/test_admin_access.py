"""Who may open /admin: the admin scope with authentication on, loopback only with it off."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mcpserve.admin.access import ADMIN_SCOPE
from mcpserve.transports.http.ops import OpsApp
from tests.admin.support import ADMIN, USER, basic, bearer, keyed_app
from tests.ops.support import make_app
from tests.support.asgi import request

pytestmark = pytest.mark.anyio

PATHS = ("/admin", "/admin/", "/admin/api/overview", "/admin/api/config")


async def test_with_authentication_off_only_loopback_clients_get_in() -> None:
    app = make_app()
    for path in PATHS:
        assert (await request(app, "GET", path=path)).status == 200
        assert (await request(app, "GET", path=path, client="::1")).status == 200
        remote = await request(app, "GET", path=path, client="10.0.0.7")
        assert remote.status == 403
        assert b"loopback" in remote.body
        # Relayed by a proxy on this machine: not local, whatever the proxy's own address.
        proxied = await request(app, "GET", path=path, headers={"x-forwarded-for": "10.0.0.7"})
        assert proxied.status == 403


async def test_dns_rebinding_and_foreign_origins_are_refused() -> None:
    app = make_app()
    rebound = await request(app, "GET", path="/admin/api/overview", headers={"host": "evil.example:8000"})
    assert rebound.status == 421
    foreign = await request(
        app, "GET", path="/admin/api/overview", headers={"origin": "https://evil.example"}
    )
    assert foreign.status == 403


async def test_the_console_is_read_only_and_hardened() -> None:
    app = make_app()
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        refused = await request(app, method, path="/admin/api/overview")
        assert refused.status == 405
        assert refused.headers["allow"] == "GET, HEAD"
    for path in (*PATHS, "/admin/assets/console.css", "/admin/nowhere"):
        reply = await request(app, "GET", path=path)
        assert reply.headers["cache-control"] == "no-store"
        policy = reply.headers["content-security-policy"]
        assert "default-src 'none'" in policy
        assert "frame-ancestors 'none'" in policy
        assert "'unsafe-inline'" not in policy
        assert reply.headers["x-frame-options"] == "DENY"
    assert (await request(app, "GET", path="/admin/nowhere")).status == 404
    head = await request(app, "HEAD", path="/admin")
    assert head.status == 200
    assert head.body == b""
    assert int(head.headers["content-length"]) > 0


async def test_page_assets_are_local_files() -> None:
    app = make_app()
    page = (await request(app, "GET", path="/admin")).body.decode()
    # Nothing fetched from elsewhere: every reference is one of the console's own files.
    references = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert references and all(ref.startswith("/admin/assets/") for ref in references), references
    assert "<script>" not in page  # no inline code: the policy would block it
    for asset, kind in (
        ("console.css", "text/css"),
        ("console.js", "text/javascript"),
        ("favicon.svg", "image/svg"),
    ):
        reply = await request(app, "GET", path=f"/admin/assets/{asset}")
        assert reply.status == 200
        assert reply.headers["content-type"].startswith(kind)
        assert f"/admin/assets/{asset}" in page


async def test_with_keys_only_the_admin_scope_opens_the_console(tmp_path: Path) -> None:
    app, keys = keyed_app(tmp_path)
    for path in PATHS:
        missing = await request(app, "GET", path=path)
        assert missing.status == 401
        assert missing.headers["www-authenticate"].startswith("Basic ")  # the browser's own dialog
        assert (await request(app, "GET", path=path, headers=bearer(keys[USER]))).status == 403
        assert (await request(app, "GET", path=path, headers=basic(keys[USER]))).status == 403
        assert (await request(app, "GET", path=path, headers=bearer("mcps_" + "x" * 40))).status == 401
        assert (await request(app, "GET", path=path, headers=bearer(keys[ADMIN]))).status == 200
        assert (await request(app, "GET", path=path, headers=basic(keys[ADMIN]))).status == 200
    refused = await request(app, "GET", path="/admin", headers=bearer(keys[USER]))
    assert ADMIN_SCOPE.encode() in refused.body
    assert refused.headers["content-type"].startswith("text/html")
    overview = await request(app, "GET", path="/admin/api/overview", headers=bearer(keys[ADMIN]))
    assert overview.json()["identity"]["viewer"] == ADMIN


async def test_malformed_credentials_are_refused(tmp_path: Path) -> None:
    app, keys = keyed_app(tmp_path)
    for headers in (
        {"authorization": "Basic !!!"},
        {"authorization": "Basic " + "b3BlcmF0b3I="},  # "operator", no password
        {"authorization": "Bearer a b"},
    ):
        assert (await request(app, "GET", path="/admin/api/overview", headers=headers)).status in (400, 401)
    in_query = await request(
        app, "GET", path="/admin/api/overview?access_token=x", headers=bearer(keys[ADMIN])
    )
    assert in_query.status == 401


async def test_with_a_metrics_port_the_console_moves_to_it(tmp_path: Path) -> None:
    app = make_app(metrics_port=9464)
    assert (await request(app, "GET", path="/admin")).status == 404
    ops = OpsApp(app.ops.unrestricted())
    assert (await request(ops, "GET", path="/admin")).status == 200
    assert (await request(ops, "GET", path="/admin/api/overview", client="10.1.1.1")).status == 403


async def test_the_console_can_be_turned_off() -> None:
    app = make_app(admin_console=False)
    assert (await request(app, "GET", path="/admin")).status == 404
    assert (await request(OpsApp(app.ops.unrestricted()), "GET", path="/admin")).status == 404


async def test_a_port_forward_reaches_the_console_where_only_public_names_are_allowed() -> None:
    app = make_app(allowed_hosts=["mcp.example.com"])
    for host in ("localhost:9464", "127.0.0.1:9464", "mcp.example.com"):
        assert (await request(app, "GET", path="/admin", headers={"host": host})).status == 200, host
    assert (await request(app, "GET", path="/admin", headers={"host": "rebound.example"})).status == 421
    # The MCP endpoint keeps its own policy.
    assert (await request(app, "POST", headers={"host": "localhost:8000"}, body=b"{}")).status == 421
