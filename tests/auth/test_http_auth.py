"""Authentication over HTTP in-process, against a real local issuer serving its JWKS on loopback.

Every refusal is checked for status, ``WWW-Authenticate`` and JSON-RPC body, and for the tool
not having run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mcpserve.transports.http.app import HttpApp
from tests.auth.app import DEPLOYER_KEY, METADATA_URL, READER_KEY, build_app
from tests.auth.support import bearer, call_tool, challenge, list_tools, modern_headers
from tests.support.asgi import META, MODERN_HEADERS, request, rpc
from tests.support.issuer import RESOURCE, LocalIssuer, local_issuer, new_key

pytestmark = pytest.mark.anyio


@pytest.fixture
def calls() -> list[str]:
    return []


@pytest.fixture
def app(issuer: LocalIssuer, tmp_path: Path, calls: list[str]) -> HttpApp:
    return build_app(issuer, tmp_path, calls)


Case = Callable[[LocalIssuer], dict[str, Any]]


def _now() -> int:
    """Read when a case builds its token, not at import: a long run reaches it minutes later."""
    return int(time.time())


# name -> (request options built from the issuer, the challenge's error, its description)
UNAUTHENTICATED: dict[str, tuple[Case, str | None, str]] = {
    "no token": (lambda i: {}, None, "Authentication required"),
    "another scheme": (
        lambda i: {"headers": {"authorization": "Basic YWxpY2U6cHc="}},
        None,
        "Authentication required",
    ),
    "bearer with a malformed token": (
        lambda i: {"headers": {"authorization": "Bearer two words"}},
        "invalid_request",
        "Malformed Authorization header: expected 'Bearer <token>'",
    ),
    "bearer without token": (
        lambda i: {"headers": {"authorization": "Bearer"}},
        "invalid_request",
        "Malformed Authorization header: expected 'Bearer <token>'",
    ),
    "unknown api key": (
        lambda i: bearer("mcps_not-a-configured-key"),
        "invalid_token",
        "Unknown or invalid token",
    ),
    "bad signature": (
        lambda i: bearer(i.mint(key=_impostor(i))),
        "invalid_token",
        "Token signature is invalid",
    ),
    "unknown kid": (
        lambda i: bearer(i.mint(key=new_key())),
        "invalid_token",
        "Token signed with an unknown key",
    ),
    "alg none": (lambda i: bearer(i.unsigned()), "invalid_token", "Token signing algorithm not allowed"),
    "hs256 with the rsa public key": (
        lambda i: bearer(i.hs256_with_public_key()),
        "invalid_token",
        "Token signing algorithm not allowed",
    ),
    "expired": (
        lambda i: bearer(i.mint(iat=_now() - 900, exp=_now() - 120)),
        "invalid_token",
        "Token has expired",
    ),
    "not yet valid": (lambda i: bearer(i.mint(nbf=_now() + 120)), "invalid_token", "Token is not valid yet"),
    "wrong issuer": (
        lambda i: bearer(i.mint(iss="https://elsewhere.example")),
        "invalid_token",
        "Token claim rejected: iss",
    ),
    "wrong audience": (
        lambda i: bearer(i.mint(aud="https://other.example/mcp")),
        "invalid_token",
        "Token claim rejected: aud",
    ),
    "token in the query string": (
        lambda i: {"path": f"/mcp?access_token={i.mint()}", **bearer(i.mint())},
        "invalid_request",
        "Credentials are accepted only in the Authorization header",
    ),
}


def _impostor(issuer: LocalIssuer) -> Any:
    """A key the issuer never published, claiming the published key's kid."""
    return new_key(issuer.key.kid)


@pytest.mark.parametrize("case", list(UNAUTHENTICATED))
async def test_refused_credentials_get_401_or_400_and_no_tool_runs(
    app: HttpApp, issuer: LocalIssuer, calls: list[str], case: str
) -> None:
    build, error, description = UNAUTHENTICATED[case]
    options = build(issuer)
    path = options.pop("path", "/mcp")
    headers = options.get("headers", {})
    if "authorization" in options:
        headers = {"authorization": options["authorization"]}
    reply = await call_tool(app, "whoami", None, headers=headers, path=path)
    # RFC 6750 §3.1 and the MCP checklist: a malformed request (invalid_request) is 400, the rest 401.
    assert reply.status == (400 if error == "invalid_request" else 401)
    expected = {"scope": "mcp", "resource_metadata": METADATA_URL}
    if error is not None:
        expected |= {"error": error, "error_description": description}
    assert challenge(reply) == expected
    assert reply.json() == {"jsonrpc": "2.0", "id": None, "error": {"code": -31010, "message": description}}
    assert calls == []


async def test_token_without_the_required_scope_gets_403(
    app: HttpApp, issuer: LocalIssuer, calls: list[str]
) -> None:
    reply = await call_tool(app, "whoami", issuer.mint(scope="profile"))
    assert reply.status == 403
    assert challenge(reply) == {
        "error": "insufficient_scope",
        "error_description": "Insufficient scope for this operation",
        "scope": "mcp",
        "resource_metadata": METADATA_URL,
    }
    assert reply.json()["error"] == {
        "code": -31011,
        "message": "Insufficient scope for this operation",
        "data": {"requiredScopes": ["mcp"]},
    }
    assert calls == []


async def test_hidden_tool_is_not_listed_and_called_directly_gets_403(
    app: HttpApp, issuer: LocalIssuer, calls: list[str]
) -> None:
    token = issuer.mint(scope="mcp")
    listed = (await list_tools(app, token)).json()["result"]
    assert [t["name"] for t in listed["tools"]] == ["whoami", "confirm", "progress"]
    assert listed["cacheScope"] == "private"
    reply = await call_tool(app, "deploy", token, {"service": "payments"})
    assert reply.status == 403
    # One challenge naming every scope the call needs, not only the missing one.
    assert challenge(reply)["scope"] == "deploy:write mcp"
    assert challenge(reply)["error"] == "insufficient_scope"
    assert reply.json()["id"] == 1
    assert reply.json()["error"]["data"] == {"requiredScopes": ["deploy:write", "mcp"]}
    assert calls == []


async def test_permitted_principals_see_and_call_their_tools(
    app: HttpApp, issuer: LocalIssuer, calls: list[str]
) -> None:
    token = issuer.mint(scope="mcp deploy:write")
    listed = (await list_tools(app, token)).json()["result"]
    assert [t["name"] for t in listed["tools"]] == ["whoami", "deploy", "confirm", "progress"]
    deployed = await call_tool(app, "deploy", token, {"service": "payments"})
    assert deployed.json()["result"]["structuredContent"] == {"result": "deployed payments"}
    who = (await call_tool(app, "whoami", token)).json()["result"]["structuredContent"]
    # The principal reaches tool code; the credential does not.
    assert who == {
        "name": "alice",
        "issuer": issuer.url,
        "scopes": ["deploy:write", "mcp"],
        "sees_authorization": False,
    }
    by_key = (await call_tool(app, "whoami", READER_KEY)).json()["result"]["structuredContent"]
    assert (by_key["name"], by_key["scopes"]) == ("reader", ["mcp"])
    assert calls == ["deploy", "whoami", "whoami"]


async def test_prompts_are_filtered_and_refused_by_scope(app: HttpApp, issuer: LocalIssuer) -> None:
    headers = {**modern_headers("prompts/list"), **bearer(READER_KEY)}
    listed = await request(app, "POST", headers=headers, body=rpc("prompts/list", {"_meta": _meta()}))
    assert listed.json()["result"]["prompts"] == []
    get = rpc("prompts/get", {"name": "release_notes", "_meta": _meta()})
    headers = {**modern_headers("prompts/get", "release_notes"), **bearer(READER_KEY)}
    refused = await request(app, "POST", headers=headers, body=get)
    assert refused.status == 403
    assert challenge(refused)["scope"] == "deploy:write mcp"
    headers = {**modern_headers("prompts/get", "release_notes"), **bearer(DEPLOYER_KEY)}
    allowed = await request(app, "POST", headers=headers, body=get)
    assert allowed.json()["result"]["messages"][0]["content"]["text"] == "Write release notes."


def _meta() -> dict[str, Any]:
    return META


async def test_resources_are_filtered_and_refused_by_scope(app: HttpApp) -> None:
    async def post(method: str, token: str, **params: Any) -> Any:
        headers = {**modern_headers(method, params.get("uri")), **bearer(token)}
        return await request(app, "POST", headers=headers, body=rpc(method, {**params, "_meta": META}))

    assert (await post("resources/list", READER_KEY)).json()["result"]["resources"] == []
    refused = await post("resources/read", READER_KEY, uri="config://deploy-targets")
    assert refused.status == 403
    assert challenge(refused)["scope"] == "deploy:write mcp"
    allowed = await post("resources/read", DEPLOYER_KEY, uri="config://deploy-targets")
    assert allowed.json()["result"]["contents"][0]["text"] == "eu-west, us-east"


async def test_protected_resource_metadata_at_both_well_known_urls(app: HttpApp, issuer: LocalIssuer) -> None:
    for path in ("/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"):
        reply = await request(app, "GET", path=path, headers={"host": "attacker.example"})
        assert reply.status == 200
        # From configuration: a forged Host changes nothing.
        assert reply.json() == {
            "resource": RESOURCE,
            "authorization_servers": [issuer.url],
            "scopes_supported": ["deploy:write", "mcp"],
            "bearer_methods_supported": ["header"],
        }


async def test_jwks_rotation_is_picked_up_without_restart(issuer: LocalIssuer, tmp_path: Path) -> None:
    calls: list[str] = []
    app = build_app(issuer, tmp_path, calls, oauth_jwks_refresh_interval=0)
    before = await call_tool(app, "whoami", issuer.mint(sub="before"))
    assert before.json()["result"]["structuredContent"]["name"] == "before"
    old_key = issuer.key
    issuer.rotate()
    try:
        after = await call_tool(app, "whoami", issuer.mint(sub="after"))
        assert after.status == 200
        assert after.json()["result"]["structuredContent"]["name"] == "after"
        # The retired key is gone from the issuer, so its tokens stop working too.
        retired = await call_tool(app, "whoami", issuer.mint(key=old_key, sub="retired"))
        assert retired.status == 401
        assert calls == ["whoami", "whoami"]
    finally:
        issuer.key = old_key
        issuer.published = [old_key]


async def test_unreachable_issuer_keys_answer_503(tmp_path: Path, calls: list[str]) -> None:
    with local_issuer() as gone:
        token = gone.mint()
    # The issuer has stopped: its JWKS URL refuses connections.
    app = build_app(gone, tmp_path, calls)
    reply = await call_tool(app, "whoami", token)
    assert reply.status == 503
    assert reply.headers["retry-after"] == "5"
    assert reply.json()["error"]["code"] == -31000
    assert calls == []


async def test_metadata_and_health_need_no_token(app: HttpApp) -> None:
    assert (await request(app, "GET", path="/health")).status == 200
    missing = await request(app, "POST", path="/.well-known/oauth-protected-resource")
    assert missing.status == 404


async def test_get_and_delete_need_a_token(app: HttpApp) -> None:
    for method in ("GET", "DELETE"):
        reply = await request(app, method, headers={"accept": "text/event-stream", "mcp-session-id": "x"})
        assert reply.status == 401
        assert challenge(reply)["resource_metadata"] == METADATA_URL


async def test_preflight_free_headers_are_unchanged(app: HttpApp) -> None:
    """Authentication runs after the Host/Origin guard: a rebinding attempt is still 421."""
    reply = await request(app, "POST", headers={**MODERN_HEADERS, "host": "evil.example"}, body=b"{}")
    assert reply.status == 421
