"""Every URL-valued setting shows its URL with the password masked, in `mcpserve config` and the log."""

from __future__ import annotations

import io
import os

import orjson
import pytest
from click.testing import CliRunner

from mcpserve.cli import main
from mcpserve.config import Settings, load_settings
from mcpserve.runtime import configure_logging
from mcpserve.urls import redact_url

# One URL with a password per URL-valued setting. A new `*_url` setting must be added here.
URL_SETTINGS = {
    "MCPSERVE_RESOURCE_URL": "https://svc:resource-pw@mcp.example/mcp",
    "MCPSERVE_OAUTH_JWKS_URL": "https://svc:jwks-pw@a.example/jwks",
    "MCPSERVE_OAUTH_INTROSPECTION_URL": "https://user:ipw-secret@a.example/introspect",
    "MCPSERVE_REDIS_URL": "redis://app:redis-pw@127.0.0.1:6379/0",
    "MCPSERVE_DATABASE_URL": "postgresql://reader:db-pw@db.example:5432/ops",
}
PASSWORDS = ("resource-pw", "jwks-pw", "ipw-secret", "redis-pw", "db-pw")


@pytest.fixture(autouse=True)
def url_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.upper().startswith("MCPSERVE_") or key.upper() in ("DATABASE_URL", "MCP_API_KEYS"):
            monkeypatch.delenv(key)
    for key, value in URL_SETTINGS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MCPSERVE_OAUTH_ISSUER", "https://a.example")


def test_the_table_covers_every_url_setting() -> None:
    url_fields = {name for name in Settings.model_fields if name.endswith("_url")}
    # The issuer is an identifier: it may carry no user-info at all (refused at start).
    assert {key.removeprefix("MCPSERVE_").lower() for key in URL_SETTINGS} == url_fields


def test_mcpserve_config_masks_every_url_password() -> None:
    result = CliRunner().invoke(main, ["config"])
    assert result.exit_code == 0, result.output
    shown = orjson.loads(result.output)
    for password in PASSWORDS:
        assert password not in result.output
    assert shown["oauth_introspection_url"] == "https://user:**********@a.example/introspect"
    assert shown["resource_url"] == "https://svc:**********@mcp.example/mcp"
    assert shown["database_url"] == "postgresql://reader:**********@db.example:5432/ops"


def test_the_configuration_log_line_masks_every_url_password() -> None:
    stream = io.BytesIO()
    configure_logging(load_settings({"log_level": "debug"}), stream)
    line = orjson.loads(stream.getvalue().splitlines()[1])
    assert line["config"]["oauth_jwks_url"] == "https://svc:**********@a.example/jwks"
    for password in PASSWORDS:
        assert password.encode() not in stream.getvalue()


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://u:p@ss@host/0", "redis://u:**********@host/0"),
        ("https://user@a.example/x", "https://user@a.example/x"),
        ("https://a.example/x?user=a@b", "https://a.example/x?user=a@b"),
        ("postgresql://h/db?password=x&a=1", "postgresql://h/db?password=**********&a=1"),
        ("https://:only-pw@a.example", "https://:**********@a.example"),
        ("no url at all", "no url at all"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown
