"""The ``mcpserve`` command line and the application loader behind ``mcpserve serve APP``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from mcpserve import MCPServer, __version__
from mcpserve.cli import main
from mcpserve.config import Settings, load_settings
from mcpserve.loader import AppLoadError, load_app
from mcpserve.protocol.sealing import KeyRing
from tests.support.logcheck import secret
from tests.support.processes import ROOT, child_env, mcpserve_argv

APP_FILE = "tests/transports/stdio_app.py"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.upper().startswith("MCPSERVE_") or key.upper() in {"PORT", "LOG_LEVEL", "DATABASE_URL"}:
            monkeypatch.delenv(key)


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[tuple[MCPServer, Settings]]:
    """Replace the runtime so ``serve`` returns after loading instead of serving."""
    calls: list[tuple[MCPServer, Settings]] = []

    def fake_serve(server: MCPServer, *, settings: Settings, **_: Any) -> None:
        calls.append((server, settings))

    monkeypatch.setattr("mcpserve.runtime.serve", fake_serve)
    return calls


def _invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def test_version() -> None:
    result = _invoke("--version")
    assert result.exit_code == 0
    assert result.output == f"mcpserve, version {__version__}\n"


@pytest.mark.slow
def test_installed_entry_point_runs() -> None:
    executable = Path(sys.executable).parent / "mcpserve"  # the console script next to this interpreter
    completed = subprocess.run([executable, "--version"], capture_output=True, check=False, timeout=30)
    assert completed.returncode == 0
    assert completed.stdout.decode().strip() == f"mcpserve, version {__version__}"


def test_help_lists_the_commands() -> None:
    result = _invoke("--help")
    assert result.exit_code == 0
    for command in ("serve", "config", "new-key"):
        assert command in result.output


def test_serve_missing_file_exits_2_with_a_message() -> None:
    result = CliRunner().invoke(main, ["serve", "nonexistent.py"])
    assert result.exit_code == 2
    assert "mcpserve: No such file: nonexistent.py" in result.output


@pytest.mark.parametrize(
    ("app", "message"),
    [
        ("no_such_module_xyz:app", "Cannot import module 'no_such_module_xyz'"),
        (f"{APP_FILE}:missing", "no MCPServer found (looked for missing)"),
        ("mcpserve.config", "no MCPServer found (looked for app, server, mcp)"),
    ],
)
def test_serve_unloadable_app_exits_2(app: str, message: str, served: list[Any]) -> None:
    result = CliRunner().invoke(main, ["serve", app])
    assert result.exit_code == 2
    assert message in result.output
    assert served == []


def test_serve_factory_returning_something_else_exits_2(tmp_path: Path, served: list[Any]) -> None:
    module = tmp_path / "not_a_server.py"
    module.write_text("def build():\n    return 42\n")
    result = CliRunner().invoke(main, ["serve", f"{module}:build"])
    assert result.exit_code == 2
    assert f"{module}:build returned int, not an MCPServer" in result.output
    assert served == []


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"MCPSERVE_PORT": "abc"}, "MCPSERVE_PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"MCPSERVE_TRANSPORT": "smoke-signals"}, "MCPSERVE_TRANSPORT"),
    ],
)
def test_serve_invalid_settings_exit_2_naming_the_variable(
    env: dict[str, str], variable: str, served: list[Any]
) -> None:
    result = CliRunner().invoke(main, ["serve"], env=env)
    assert result.exit_code == 2
    assert f"mcpserve: invalid configuration: {variable}: " in result.output
    assert served == []


def test_serve_config_file_problems_exit_2(tmp_path: Path, served: list[Any]) -> None:
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("colour = 'blue'\n")
    result = CliRunner().invoke(main, ["serve", "--config", str(unknown)])
    assert result.exit_code == 2
    assert "--config: " in result.output and "unknown settings colour" in result.output
    missing = CliRunner().invoke(main, ["serve", "--config", str(tmp_path / "nope.toml")])
    assert missing.exit_code == 2
    assert "config file not found" in missing.output


def test_serve_loads_the_demo_by_default_and_flags_win(tmp_path: Path, served: list[Any]) -> None:
    config = tmp_path / "c.toml"
    config.write_text('port = 9000\nhost = "10.1.1.1"\ntransport = "http"\nauth = "none"\n')
    result = _invoke(
        "serve",
        "--transport",
        "stdio",
        "--port",
        "9300",
        "--config",
        str(config),
        env={"MCPSERVE_PORT": "9100"},
    )
    assert result.exit_code == 0, result.output
    ((server, settings),) = served
    assert server.name == "mcpserve-demo"
    assert (settings.transport, settings.port, settings.host) == ("stdio", 9300, "10.1.1.1")


def test_serve_loads_an_app_file(served: list[Any]) -> None:
    assert _invoke("serve", APP_FILE, "--log-level", "warning").exit_code == 0
    ((server, settings),) = served
    assert server.name == "stdio-test"
    assert settings.log_level == "warning"


def test_serve_reports_configuration_errors_found_by_the_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    from mcpserve.errors import ConfigError  # noqa: PLC0415

    def refuse(server: MCPServer, *, settings: Settings) -> None:
        raise ConfigError("MCPSERVE_REQUEST_STATE_KEYS", "key 0 is not the base64url encoding of 32 bytes")

    monkeypatch.setattr("mcpserve.runtime.serve", refuse)
    result = CliRunner().invoke(main, ["serve"])
    assert result.exit_code == 2
    assert "invalid configuration: MCPSERVE_REQUEST_STATE_KEYS: key 0" in result.output


def test_serve_exits_130_on_interrupt(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(server: MCPServer, *, settings: Settings) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("mcpserve.runtime.serve", interrupted)
    assert CliRunner().invoke(main, ["serve"]).exit_code == 130


@pytest.mark.slow
def test_bad_sealing_key_stops_a_real_server_with_exit_2() -> None:
    completed = subprocess.run(
        mcpserve_argv("serve", "--transport", "stdio"),
        input=b"",
        capture_output=True,
        env=child_env(MCPSERVE_REQUEST_STATE_KEYS=secret("not-a-key")),
        cwd=ROOT,
        timeout=30,
        check=False,
    )
    assert completed.returncode == 2
    assert completed.stdout == b""
    assert b"invalid configuration: MCPSERVE_REQUEST_STATE_KEYS: key 0" in completed.stderr
    assert b"not-a-key" not in completed.stderr


def test_config_prints_json_with_keys_redacted(tmp_path: Path) -> None:
    key = secret(KeyRing.generate_key_string())
    config = tmp_path / "c.toml"
    config.write_text("port = 9000\n")
    result = _invoke(
        "config", "--config", str(config), env={"MCPSERVE_REQUEST_STATE_KEYS": f"{key}, {key[::-1]}"}
    )
    assert result.exit_code == 0
    printed = orjson.loads(result.output)
    assert printed["port"] == 9000
    assert printed["request_state_keys"] == ["**********", "**********"]
    assert key not in result.output
    assert set(printed) == set(Settings.model_fields)


def test_config_with_invalid_settings_exits_2() -> None:
    result = CliRunner().invoke(main, ["config"], env={"MCPSERVE_PORT": "abc"})
    assert result.exit_code == 2
    assert "mcpserve: invalid configuration: MCPSERVE_PORT:" in result.output


def test_new_key_prints_a_fresh_key_the_key_ring_accepts() -> None:
    first = _invoke("new-key").output.strip()
    second = _invoke("new-key").output.strip()
    assert first != second
    ring = KeyRing.from_strings([first, second])
    token = ring.seal(b"payload", b"aad")
    assert KeyRing.from_strings([second, first]).open(token, b"aad") == b"payload"


# -- the loader ----------------------------------------------------------------------------------------


def test_loader_accepts_module_attribute_factory_and_file_forms(tmp_path: Path) -> None:
    settings = load_settings()
    assert load_app("mcpserve.demo.app:create_app", settings).name == "mcpserve-demo"
    assert load_app(f"{APP_FILE}:app", settings).name == "stdio-test"
    assert load_app(APP_FILE, settings).name == "stdio-test"
    module = tmp_path / "factories.py"
    module.write_text(
        "from mcpserve import MCPServer\n"
        "mcp = MCPServer('by-candidate')\n"
        "def build():\n    return MCPServer('no-arguments')\n"
        "def with_settings(settings):\n    return MCPServer(f'port-{settings.port}')\n"
    )
    assert load_app(str(module), settings).name == "by-candidate"
    assert load_app(f"{module}:build", settings).name == "no-arguments"
    assert load_app(f"{module}:with_settings", settings).name == "port-8000"


def test_loader_refuses_missing_paths() -> None:
    with pytest.raises(AppLoadError, match="No such file"):
        load_app("some/dir/app", load_settings())
