"""OAuth settings refused at start: URLs that are not absolute https (http only on loopback)."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from mcpserve.cli import main
from mcpserve.config import load_settings
from mcpserve.errors import ConfigError

BASE = {
    "MCPSERVE_AUTH": "oauth",
    "MCPSERVE_OAUTH_ISSUER": "https://a.example",
    "MCPSERVE_OAUTH_JWKS_URL": "https://a.example/jwks",
    "MCPSERVE_RESOURCE_URL": "https://mcp.example/mcp",
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.upper().startswith("MCPSERVE_") or key.upper() == "MCP_API_KEYS":
            monkeypatch.delenv(key)
    for key, value in BASE.items():
        monkeypatch.setenv(key, value)


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("MCPSERVE_OAUTH_JWKS_URL", "notaurl", "must be an absolute https:// URL"),
        ("MCPSERVE_OAUTH_JWKS_URL", "ftp://x/y", "must be an absolute https:// URL (got scheme 'ftp')"),
        ("MCPSERVE_OAUTH_JWKS_URL", "http://keys.example/jwks", "must use https://"),
        ("MCPSERVE_OAUTH_JWKS_URL", "https://a.example:99999/jwks", "port"),
        ("MCPSERVE_OAUTH_JWKS_URL", "https://a.example/jwks#x", "fragment"),
        ("MCPSERVE_OAUTH_INTROSPECTION_URL", "foo", "must be an absolute https:// URL"),
        ("MCPSERVE_OAUTH_INTROSPECTION_URL", "https:///introspect", "no scheme or host"),
        ("MCPSERVE_OAUTH_ISSUER", "not-a-url", "must be an absolute https:// URL"),
        ("MCPSERVE_OAUTH_ISSUER", "https://a.example/?tenant=1", "no user-info or query"),
        ("MCPSERVE_OAUTH_ISSUER", "https://a.example/ tenant", "without spaces"),
    ],
)
def test_bad_oauth_urls_exit_2_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, reason: str
) -> None:
    monkeypatch.setenv(variable, value)
    result = CliRunner().invoke(main, ["serve", "tests/transports/stdio_app.py", "--port", "1"])
    assert result.exit_code == 2
    assert f"invalid configuration: {variable}: " in result.output
    assert reason in result.output


def test_the_message_never_repeats_the_url_and_its_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCPSERVE_OAUTH_INTROSPECTION_URL", "http://client:hunter2-pw@auth.example/introspect")
    with pytest.raises(ConfigError) as refused:
        load_settings()
    assert refused.value.variable == "MCPSERVE_OAUTH_INTROSPECTION_URL"
    assert "hunter2" not in str(refused.value) and "client" not in str(refused.value)


def test_issuer_user_info_is_refused_without_echoing_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCPSERVE_OAUTH_ISSUER", "https://admin:issuer-pw@a.example")
    with pytest.raises(ConfigError) as refused:
        load_settings()
    assert refused.value.variable == "MCPSERVE_OAUTH_ISSUER"
    assert "issuer-pw" not in str(refused.value)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/jwks",
        "http://localhost/jwks",
        "http://[::1]:9000/jwks",
        "https://keys.example/jwks?version=2",
        "HTTPS://A.example/jwks",
    ],
)
def test_https_and_loopback_http_urls_are_accepted(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("MCPSERVE_OAUTH_JWKS_URL", url)
    assert load_settings().oauth_jwks_url == url


def test_an_empty_value_counts_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCPSERVE_OAUTH_INTROSPECTION_URL", "")
    assert load_settings().oauth_introspection_url is None
