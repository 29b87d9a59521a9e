"""Database settings: URL schemes, pool bounds, the seed's millisecond alias, and redaction."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mcpserve.config import load_settings
from mcpserve.errors import ConfigError

DATABASE_VARIABLES = {
    "DATABASE_URL",
    "DB_MAX_CONNECTIONS",
    "DB_IDLE_TIMEOUT",
    "MCPSERVE_DATABASE_URL",
    "MCPSERVE_DB_MIN_CONNECTIONS",
    "MCPSERVE_DB_MAX_CONNECTIONS",
    "MCPSERVE_DB_IDLE_TIMEOUT",
    "MCPSERVE_DB_STATEMENT_TIMEOUT",
    "MCPSERVE_CONFIG",
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.upper() in DATABASE_VARIABLES:
            monkeypatch.delenv(key)


def test_defaults() -> None:
    settings = load_settings({"auth": "none"})
    assert settings.database_url is None
    assert (settings.db_min_connections, settings.db_max_connections) == (1, 20)
    assert (settings.db_idle_timeout, settings.db_statement_timeout) == (30.0, 5.0)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://reader@db.internal:5432/ops",
        "postgres://reader:secret@127.0.0.1/ops?sslmode=require&search_path=demo",
        "postgresql:///ops?host=/var/run/postgresql",
    ],
)
def test_postgres_urls_are_accepted(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("MCPSERVE_DATABASE_URL", url)
    assert load_settings().database_url == url


def test_sqlite_urls_and_paths_are_accepted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    database = tmp_path / "ops.sqlite"
    database.touch()
    for url in (f"sqlite:///{database}", str(database)):
        monkeypatch.setenv("DATABASE_URL", url)
        assert load_settings().database_url == url
    monkeypatch.setenv("DATABASE_URL", "  ")
    assert load_settings().database_url is None


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        ("MCPSERVE_DATABASE_URL", "mysql://root:pw@h/db", "unsupported database scheme 'mysql'"),
        ("DATABASE_URL", "postgresql://u:pw@h:notaport/db", "malformed PostgreSQL URL"),
        ("DATABASE_URL", "postgresql://u:pw@h:99999/db", "malformed PostgreSQL URL"),
        ("MCPSERVE_DATABASE_URL", "postgresql:///db", "needs a host"),
        ("MCPSERVE_DATABASE_URL", "sqlite://relative.db", "sqlite:///relative/path"),
        ("DATABASE_URL", "/nonexistent/ops.sqlite", "no SQLite database file"),
        ("MCPSERVE_DB_MAX_CONNECTIONS", "0", "greater than or equal to 1"),
        ("DB_MAX_CONNECTIONS", "many", "valid integer"),
        ("MCPSERVE_DB_MIN_CONNECTIONS", "-1", "greater than or equal to 0"),
        ("MCPSERVE_DB_STATEMENT_TIMEOUT", "0", "greater than 0"),
        ("MCPSERVE_DB_IDLE_TIMEOUT", "-5", "greater than or equal to 0"),
        ("DB_IDLE_TIMEOUT", "soon", "milliseconds"),
        ("DB_IDLE_TIMEOUT", "-1", "non-negative"),
    ],
)
def test_invalid_values_name_the_variable_and_never_echo_the_url(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, fragment: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert caught.value.variable == variable
    assert fragment in str(caught.value)
    assert "pw" not in str(caught.value)


def test_pool_minimum_may_not_exceed_the_maximum(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCPSERVE_DB_MIN_CONNECTIONS", "30")
    monkeypatch.setenv("DB_MAX_CONNECTIONS", "10")
    with pytest.raises(ConfigError, match="at least MCPSERVE_DB_MIN_CONNECTIONS") as caught:
        load_settings()
    assert caught.value.variable == "DB_MAX_CONNECTIONS"


def test_the_seed_alias_counts_milliseconds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_IDLE_TIMEOUT", "30000")
    monkeypatch.setenv("DB_MAX_CONNECTIONS", "7")
    settings = load_settings()
    assert (settings.db_idle_timeout, settings.db_max_connections) == (30.0, 7)
    monkeypatch.setenv("MCPSERVE_DB_IDLE_TIMEOUT", "12")  # seconds, and the prefixed name wins
    assert load_settings().db_idle_timeout == 12.0
    assert load_settings({"db_idle_timeout": 3}).db_idle_timeout == 3.0  # flags win over both


def test_the_password_never_appears_in_the_redacted_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://reader:s3cret@db:5432/ops?password=other&sslmode=x")
    shown = load_settings().redacted()["database_url"]
    assert shown == "postgresql://reader:**********@db:5432/ops?password=**********&sslmode=x"
