"""The server and settings the authentication tests run against."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mcpserve import Context, MCPServer
from mcpserve.auth.keys import hash_key
from mcpserve.config import load_settings
from mcpserve.runtime import build_http_app
from mcpserve.transports.http.app import HttpApp
from tests.support.issuer import RESOURCE, LocalIssuer

READER_KEY = "mcps_reader-key-for-tests"
DEPLOYER_KEY = "mcps_deployer-key-for-tests"
METADATA_URL = "http://127.0.0.1:8000/.well-known/oauth-protected-resource/mcp"


def make_server(calls: list[str]) -> MCPServer:
    """Tools that record every run in ``calls``, so a test can show a refused one never ran."""
    server = MCPServer("auth-test")

    @server.tool()
    def whoami(ctx: Context) -> dict[str, Any]:
        """Who is calling."""
        calls.append("whoami")
        principal = ctx.principal
        assert principal is not None
        return {
            "name": principal.name,
            "issuer": principal.issuer,
            "scopes": sorted(principal.scopes),
            "sees_authorization": "authorization" in (ctx.headers or {}),
        }

    @server.tool(scopes=["deploy:write"])
    def deploy(service: str) -> str:
        """Deploy a service."""
        calls.append("deploy")
        return f"deployed {service}"

    @server.tool()
    async def confirm(ctx: Context, action: str) -> str:
        """Ask before acting."""
        answer = await ctx.elicit("Really?", {"type": "object", "properties": {"ok": {"type": "boolean"}}})
        calls.append(f"confirm:{answer.action}")
        return f"{action}: {answer.action}"

    @server.tool()
    async def progress(ctx: Context) -> str:
        """Reports progress, so its answer is an SSE stream with event ids."""
        await ctx.report_progress(1, 1)
        calls.append("progress")
        return "done"

    @server.resource("config://deploy-targets", scopes=["deploy:write"])
    def deploy_targets() -> str:
        return "eu-west, us-east"

    @server.prompt(scopes=["deploy:write"])
    def release_notes() -> str:
        return "Write release notes."

    return server


def write_keys(directory: Path) -> Path:
    path = directory / "keys.toml"
    path.write_text(
        f"""
[[keys]]
principal = "reader"
sha256 = "{hash_key(READER_KEY)}"
scopes = ["mcp"]

[[keys]]
principal = "deployer"
sha256 = "{hash_key(DEPLOYER_KEY)}"
scopes = ["mcp", "deploy:write"]
"""
    )
    return path


def build_app(issuer: LocalIssuer, directory: Path, calls: list[str], **overrides: Any) -> HttpApp:
    settings = load_settings(
        {
            "auth": "keys,oauth",
            "api_keys_file": str(write_keys(directory)),
            "oauth_issuer": issuer.url,
            "oauth_jwks_url": issuer.jwks_url,
            "resource_url": RESOURCE,
            "required_scopes": ["mcp"],
            **overrides,
        }
    )
    return build_http_app(make_server(calls), settings)
