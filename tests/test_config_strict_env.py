"""Mistyped MCPSERVE_* variables and malformed PostgreSQL URLs stop the server, naming the variable."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from mcpserve.cli import main
from mcpserve.config import load_settings
from mcpserve.errors import ConfigError


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.upper().startswith("MCPSERVE_") or key.upper() == "DATABASE_URL":
            monkeypatch.delenv(key)


def test_a_mistyped_variable_is_named_with_the_closest_real_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCPSERVE_RATE_LIMIT_PER_MINUTES", "5")
    with pytest.raises(ConfigError) as error:
        load_settings({"auth": "none"})
    assert error.value.variable == "MCPSERVE_RATE_LIMIT_PER_MINUTES"
    assert "did you mean MCPSERVE_RATE_LIMIT_PER_MINUTE?" in str(error.value)


def test_an_unknown_variable_with_nothing_close_is_still_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCPSERVE_ZZZ", "1")
    with pytest.raises(ConfigError, match=r"^MCPSERVE_ZZZ: unknown setting \(docs"):
        load_settings({"auth": "none"})


def test_variables_read_outside_settings_are_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCPSERVE_TOOLS_DIR", "/tmp/tools")
    monkeypatch.setenv("MCPSERVE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
    monkeypatch.setenv("MCPSERVE_RATE_LIMIT_PER_MINUTE", "5")
    assert load_settings({"auth": "none"}).rate_limit_per_minute == 5


def test_the_cli_exits_2_on_a_mistyped_variable() -> None:
    result = CliRunner().invoke(main, ["config"], env={"MCPSERVE_RATE_LIMIT_PER_MINUTES": "5"})
    assert result.exit_code == 2
    assert "MCPSERVE_RATE_LIMIT_PER_MINUTES" in result.stderr
    assert "MCPSERVE_RATE_LIMIT_PER_MINUTE?" in result.stderr


@pytest.mark.parametrize("url", ["postgres:/bad", "postgresql:bad", "POSTGRES:/db"])
def test_a_malformed_postgresql_url_is_named_as_such(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    with pytest.raises(ConfigError) as error:
        load_settings({"auth": "none"})
    assert error.value.variable == "DATABASE_URL"
    assert "malformed PostgreSQL URL" in str(error.value)
    assert "SQLite" not in str(error.value)
