"""Which authentication runs, decided from settings, and the configurations refused at start."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mcpserve import MCPServer
from mcpserve.auth_setup import auth_methods, build_auth_gate
from mcpserve.cli import main
from mcpserve.config import load_settings
from mcpserve.config_checks import is_loopback_host as is_loopback
from mcpserve.errors import ConfigError, Unauthorized
from mcpserve.runtime import build_dispatcher, build_http_app
from tests.auth.app import make_server, write_keys

KEY = "k1-0123456789abcdef"
OAUTH = {"oauth_issuer": "https://issuer.example", "oauth_jwks_url": "https://issuer.example/jwks"}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.upper().startswith("MCPSERVE_") or key.upper() == "MCP_API_KEYS":
            monkeypatch.delenv(key)


def _server() -> MCPServer:
    return make_server([])


@pytest.mark.parametrize(
    ("settings", "methods"),
    [
        ({"auth": "none"}, set()),
        ({"api_keys": [KEY]}, {"keys"}),
        (OAUTH, {"oauth"}),
        ({"api_keys": [KEY], **OAUTH}, {"keys", "oauth"}),
        ({"auth": "oauth,keys"}, {"keys", "oauth"}),
    ],
)
def test_methods_are_inferred_from_what_is_configured(settings: dict[str, Any], methods: set[str]) -> None:
    assert auth_methods(load_settings(settings)) == methods


def test_loopback_with_nothing_configured_serves_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "mcpserve"):
        app = build_http_app(_server(), load_settings({}))
    assert app.endpoint.auth is None
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert "no authentication configured" in warnings[0].getMessage()
    assert "--auth none" in warnings[0].getMessage() and "MCP_API_KEYS" in warnings[0].getMessage()


def test_an_explicit_none_on_loopback_serves_without_the_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "mcpserve"):
        assert build_http_app(_server(), load_settings({"auth": "none"})).endpoint.auth is None
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "::"])
def test_a_non_loopback_bind_with_nothing_configured_is_refused(host: str) -> None:
    settings = load_settings({"host": host, "allow_unauthenticated": True})
    with pytest.raises(ConfigError) as refused:
        build_http_app(_server(), settings)
    assert refused.value.variable == "MCPSERVE_AUTH"
    assert f"refusing to serve {host} without authentication" in str(refused.value)
    assert "MCP_API_KEYS" in str(refused.value) and "--auth none" in str(refused.value)


def test_the_cli_refuses_a_non_loopback_bind_without_authentication_in_one_line() -> None:
    result = CliRunner().invoke(main, ["serve", "tests/transports/stdio_app.py", "--host", "0.0.0.0"])
    assert result.exit_code == 2
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("mcpserve: invalid configuration: MCPSERVE_AUTH: refusing to serve 0.0.0.0")


@pytest.mark.parametrize(
    ("settings", "variable"),
    [
        ({"auth": "keys"}, "MCPSERVE_API_KEYS_FILE"),
        ({"auth": "oauth", "resource_url": "https://mcp.example/mcp"}, "MCPSERVE_OAUTH_ISSUER"),
        (
            {"auth": "oauth", "oauth_issuer": "https://i.example", "resource_url": "https://mcp.example/mcp"},
            "MCPSERVE_OAUTH_JWKS_URL",
        ),
        (OAUTH, "MCPSERVE_RESOURCE_URL"),
        (
            {**OAUTH, "resource_url": "https://mcp.example/mcp", "oauth_algorithms": ["RS256", "HS256"]},
            "MCPSERVE_OAUTH_ALGORITHMS",
        ),
        (
            {**OAUTH, "resource_url": "https://mcp.example/mcp", "oauth_algorithms": ["none"]},
            "MCPSERVE_OAUTH_ALGORITHMS",
        ),
        ({"auth": "none", "host": "0.0.0.0"}, "MCPSERVE_AUTH"),
        ({"auth": "none", "host": "10.1.2.3"}, "MCPSERVE_AUTH"),
        ({"auth": "none", "tool_scopes": {"no_such_tool": ["x"]}}, "MCPSERVE_TOOL_SCOPES"),
    ],
)
def test_unusable_configurations_name_their_variable(settings: dict[str, Any], variable: str) -> None:
    with pytest.raises(ConfigError) as refused:
        build_http_app(_server(), load_settings(settings))
    assert refused.value.variable == variable


def test_unauthenticated_non_loopback_needs_the_explicit_allowance() -> None:
    settings = load_settings({"auth": "none", "host": "0.0.0.0", "allow_unauthenticated": True})
    assert build_auth_gate(_server(), settings) is None


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("example.com", False),
    ],
)
def test_loopback_detection(host: str, expected: bool) -> None:
    assert is_loopback(host) is expected


def test_keys_only_has_no_authorization_server_to_point_to() -> None:
    gate = build_auth_gate(_server(), load_settings({"api_keys": [KEY], "host": "0.0.0.0"}))
    assert gate is not None
    assert gate.resource_metadata_url is None and gate.documents == {}
    assert gate.challenge(Unauthorized("Authentication required")) == [(b"www-authenticate", b"Bearer")]


def test_metadata_never_lists_offline_access() -> None:
    settings = {
        **OAUTH,
        "resource_url": "https://mcp.example/mcp/",
        "required_scopes": ["mcp", "offline_access"],
    }
    gate = build_auth_gate(_server(), load_settings(settings))
    assert gate is not None
    assert gate.resource_metadata_url == "https://mcp.example/.well-known/oauth-protected-resource/mcp"
    document = gate.documents["/.well-known/oauth-protected-resource/mcp"]
    assert document["resource"] == "https://mcp.example/mcp"
    assert document["scopes_supported"] == ["deploy:write", "mcp"]


def test_the_tool_scopes_setting_overrides_the_decorator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCPSERVE_TOOL_SCOPES", '{"whoami": ["admin"], "deploy": []}')
    server = _server()
    build_dispatcher(server, load_settings({"auth": "none"}))
    assert server.scopes_for("tools/call", {"name": "whoami"}) == {"admin"}
    assert server.scopes_for("tools/call", {"name": "deploy"}) == frozenset()


def test_lists_are_private_only_when_they_vary_by_caller(tmp_path: Path) -> None:
    keyed = build_dispatcher(_server(), load_settings({"api_keys_file": str(write_keys(tmp_path))}))
    assert keyed.cache_hints["tools/list"].scope == "private"
    assert (
        build_dispatcher(_server(), load_settings({"auth": "none"})).cache_hints["tools/list"].scope
        == "public"
    )
    stdio = load_settings({"transport": "stdio", "api_keys": [KEY]})
    assert build_dispatcher(_server(), stdio).cache_hints["tools/list"].scope == "public"
    assert build_dispatcher(_server(), load_settings({})).cache_hints["tools/list"].scope == "public"


def test_plain_keys_come_from_mcp_api_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCP_API_KEYS", "first-key-0123456789, second-key-0123456789")
    settings = load_settings({})
    assert [k.get_secret_value() for k in settings.api_keys] == [
        "first-key-0123456789",
        "second-key-0123456789",
    ]
    assert settings.redacted()["api_keys"] == ["**********", "**********"]
    assert "first-key" not in repr(settings.redacted())


def test_scopes_for_names_the_target_of_each_method() -> None:
    server = _server()
    assert server.scopes_for("tools/call", {"name": "deploy"}) == {"deploy:write"}
    assert server.scopes_for("tools/call", {"name": "missing"}) == frozenset()
    assert server.scopes_for("prompts/get", {"name": "release_notes"}) == {"deploy:write"}
    assert server.scopes_for("resources/read", {"uri": "nowhere://x"}) == frozenset()
    assert server.scopes_for("tools/list", {}) == frozenset()
    with pytest.raises(KeyError):
        server.set_tool_scopes("missing", [])


@pytest.mark.parametrize("keys", ["a", "a-sufficiently-long-key,short-secret"])
def test_short_plain_keys_exit_2_naming_the_variable_without_showing_a_key(
    monkeypatch: pytest.MonkeyPatch, keys: str
) -> None:
    monkeypatch.setenv("MCP_API_KEYS", keys)
    result = CliRunner().invoke(main, ["serve", "tests/transports/stdio_app.py", "--port", "1"])
    assert result.exit_code == 2
    assert "invalid configuration: MCP_API_KEYS: " in result.output
    assert "shorter than 16 characters" in result.output
    assert "short-secret" not in result.output and "a-sufficiently" not in result.output


@pytest.mark.parametrize(
    ("variable", "keys"),
    [
        ("MCP_API_KEYS", "a-sufficiently-long-key,key with a space inside"),
        ("MCPSERVE_API_KEYS", "key\"with'quotes-0123456789"),
        ("MCPSERVE_API_KEYS", "ключ-0123456789abcdef"),
        ("MCPSERVE_API_KEYS", "padding=in-the-middle-0123456789"),
    ],
)
def test_keys_a_bearer_token_cannot_carry_exit_2_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, keys: str
) -> None:
    monkeypatch.setenv(variable, keys)
    result = CliRunner().invoke(main, ["serve", "tests/transports/stdio_app.py", "--port", "1"])
    assert result.exit_code == 2
    assert f"invalid configuration: {variable}: " in result.output
    assert "characters a Bearer token cannot carry" in result.output
    assert "inside" not in result.output and "quotes" not in result.output  # no key shown


def test_every_character_a_bearer_token_can_carry_is_accepted() -> None:
    key = "AZaz09-._~+/0123456789=="
    assert [k.get_secret_value() for k in load_settings({"api_keys": [key]}).api_keys] == [key]
