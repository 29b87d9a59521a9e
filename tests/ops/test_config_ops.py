"""Invalid configurations exit 2 naming the variable; ``mcpserve check`` reports readiness."""

from __future__ import annotations

import os
import subprocess
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from mcpserve.cli import main
from mcpserve.config import load_settings
from tests.support.logcheck import secret
from tests.support.processes import ROOT, child_env, mcpserve_argv


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.upper().startswith("MCPSERVE_") or key.upper() in {
            "PORT",
            "LOG_LEVEL",
            "DATABASE_URL",
            "CORS_ORIGINS",
        }:
            monkeypatch.delenv(key)


def _invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"MCPSERVE_HOST": "0.0.0.0"}, "MCPSERVE_AUTH"),
        ({"MCPSERVE_HOST": "0.0.0.0", "MCPSERVE_AUTH": "none"}, "MCPSERVE_AUTH"),
        ({"MCPSERVE_REDIS_URL": "http://cache:6379"}, "MCPSERVE_REDIS_URL"),
        ({"RATE_LIMIT_PER_MINUTE": "-1"}, "RATE_LIMIT_PER_MINUTE"),
        ({"DB_MAX_CONNECTIONS": "0"}, "DB_MAX_CONNECTIONS"),
        ({"MCPSERVE_AUTH": "maybe"}, "MCPSERVE_AUTH"),
        ({"MCPSERVE_DATABASE_URL": "mysql://db/app"}, "MCPSERVE_DATABASE_URL"),
        ({"DATABASE_URL": "postgresql://:5432/app"}, "DATABASE_URL"),
        ({"DATABASE_URL": "postgresql://db:port/app"}, "DATABASE_URL"),
        ({"DATABASE_URL": "sqlite://relative.db"}, "DATABASE_URL"),
        ({"MCPSERVE_METRICS_ALLOW": "10.0.0.0/33"}, "MCPSERVE_METRICS_ALLOW"),
        ({"MCPSERVE_TRUSTED_PROXIES": "proxy.internal"}, "MCPSERVE_TRUSTED_PROXIES"),
        ({"CORS_ORIGINS": "app.example.com"}, "CORS_ORIGINS"),
        ({"MCPSERVE_ALLOWED_ORIGINS": "https://app.example.com/path"}, "MCPSERVE_ALLOWED_ORIGINS"),
        ({"MCPSERVE_METRICS_PORT": "8000"}, "MCPSERVE_METRICS_PORT"),
        ({"PORT": "9100", "MCPSERVE_METRICS_PORT": "9100"}, "MCPSERVE_METRICS_PORT"),
        ({"MCPSERVE_METRICS_PORT": "70000"}, "MCPSERVE_METRICS_PORT"),
        ({"MCPSERVE_DRAIN_TIMEOUT": "-1"}, "MCPSERVE_DRAIN_TIMEOUT"),
        ({"MCPSERVE_DRAIN_TIMEOUT": "soon"}, "MCPSERVE_DRAIN_TIMEOUT"),
        ({"PORT": "99999"}, "PORT"),
        ({"LOG_LEVEL": "verbose"}, "LOG_LEVEL"),
        ({"MCPSERVE_MAX_SESSIONS": "0"}, "MCPSERVE_MAX_SESSIONS"),
        ({"MCPSERVE_TOOL_TIMEOUT": "0"}, "MCPSERVE_TOOL_TIMEOUT"),
        ({"MCPSERVE_MAX_BODY_BYTES": "10"}, "MCPSERVE_MAX_BODY_BYTES"),
    ],
)
def test_invalid_configuration_exits_2_naming_the_variable(env: dict[str, str], variable: str) -> None:
    # check wires everything serve would (authentication included) without serving.
    result = _invoke("check", env=env)
    assert result.exit_code == 2, result.output
    assert f"invalid configuration: {variable}:" in result.output, result.output


def test_database_password_never_appears_in_errors_or_the_printed_configuration() -> None:
    password = secret("pw-never-printed-7f3a")
    bad = _invoke("config", env={"DATABASE_URL": f"postgresql://app:{password}@db:port/app"})
    assert bad.exit_code == 2
    assert password not in bad.output
    good = _invoke("config", env={"DATABASE_URL": f"postgresql://app:{password}@db:5432/app"})
    assert good.exit_code == 0
    assert orjson.loads(good.output)["database_url"].startswith("postgresql://app:")


def test_metrics_port_may_differ_from_the_main_port() -> None:
    assert load_settings({"port": 9000, "metrics_port": 9001}).metrics_port == 9001


def test_check_reports_ready() -> None:
    result = _invoke("check", "tests.ops.check_app:ready", env={"MCPSERVE_AUTH": "none"})
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.stdout) == {"status": "ready", "checks": {"sessions": "ok", "cache": "ok"}}


def test_check_reports_a_failing_dependency_without_credentials() -> None:
    result = _invoke("check", "tests.ops.check_app:broken", env={"MCPSERVE_AUTH": "none"})
    assert result.exit_code == 1
    report = orjson.loads(result.stdout)
    assert report["status"] == "not ready"
    assert report["checks"]["cache"] == "ok"
    assert report["checks"]["database"] == (
        "ConnectionRefusedError: connect to postgresql://***@db.internal:5432/app refused"
    )


def test_check_reports_a_failing_startup_and_stdio_checks() -> None:
    failed = _invoke("check", "tests.ops.check_app:failing_startup", env={"MCPSERVE_AUTH": "none"})
    assert failed.exit_code == 1
    assert orjson.loads(failed.stdout) == {
        "status": "not ready",
        "startup": "RuntimeError: pool could not open",
    }
    stdio = _invoke("check", "tests.ops.check_app:broken", env={"MCPSERVE_TRANSPORT": "stdio"})
    assert stdio.exit_code == 1
    assert set(orjson.loads(stdio.stdout)["checks"]) == {"cache", "database"}


def test_check_reports_sealing_keys_and_unloadable_apps_as_configuration_errors() -> None:
    keys = _invoke("check", env={"MCPSERVE_REQUEST_STATE_KEYS": secret("short-key"), "MCPSERVE_AUTH": "none"})
    assert keys.exit_code == 2
    assert "MCPSERVE_REQUEST_STATE_KEYS" in keys.output
    missing = _invoke("check", "tests.ops.no_such_module:app", env={"MCPSERVE_AUTH": "none"})
    assert missing.exit_code == 2


@pytest.mark.slow
def test_a_real_server_refuses_a_public_bind_without_authentication() -> None:
    completed = subprocess.run(
        mcpserve_argv("serve", "--host", "0.0.0.0", "--port", "0"),
        capture_output=True,
        env=child_env(),
        cwd=ROOT,
        timeout=30,
        check=False,
    )
    assert completed.returncode == 2
    assert b"invalid configuration: MCPSERVE_AUTH: " in completed.stderr
