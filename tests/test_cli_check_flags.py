"""``mcpserve check`` takes the flags of ``serve``, so it checks what ``serve`` would run."""

from __future__ import annotations

import os

import click
import orjson
import pytest
from click.testing import CliRunner

from mcpserve.cli import check, main, serve


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.upper().startswith("MCPSERVE_") or key.upper() in {"PORT", "LOG_LEVEL"}:
            monkeypatch.delenv(key)


def _options(command: click.Command) -> set[str]:
    return {name for param in command.params for name in param.opts if name.startswith("--")}


def test_check_has_every_flag_of_serve() -> None:
    assert _options(check) == _options(serve)


def test_check_with_the_flags_make_serve_passes_is_ready() -> None:
    bare = CliRunner().invoke(main, ["check", "tests.ops.check_app:ready", "--host", "0.0.0.0"])
    assert bare.exit_code == 2  # a non-loopback bind without any authentication configured
    assert "MCPSERVE_AUTH" in bare.stderr
    loopback = CliRunner().invoke(main, ["check", "tests.ops.check_app:ready"])
    assert loopback.exit_code == 0, loopback.output  # served open on loopback, with a warning
    flagged = CliRunner().invoke(
        main, ["check", "tests.ops.check_app:ready", "--auth", "none", "--host", "127.0.0.1", "--port", "0"]
    )
    assert flagged.exit_code == 0, flagged.output
    assert orjson.loads(flagged.stdout)["status"] == "ready"


def test_check_flags_override_the_environment() -> None:
    result = CliRunner().invoke(
        main,
        ["check", "tests.ops.check_app:broken", "--transport", "stdio"],
        env={"MCPSERVE_TRANSPORT": "http"},
    )
    assert result.exit_code == 1  # checked on stdio (no authentication needed): the database is down
    assert set(orjson.loads(result.stdout)["checks"]) == {"cache", "database"}
