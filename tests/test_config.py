"""Settings: defaults, environment variables and aliases, TOML file, precedence, and error naming."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from mcpserve.config import Settings, load_settings
from mcpserve.errors import ConfigError
from tests.support.logcheck import secret

_SEED_NAMES = {"PORT", "LOG_LEVEL", "DATABASE_URL", "RATE_LIMIT_PER_MINUTE", "RATE_LIMIT_PER_HOUR"}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No setting from the developer's shell may leak into these tests."""
    for key in list(os.environ):
        if key.upper().startswith("MCPSERVE_") or key.upper() in _SEED_NAMES:
            monkeypatch.delenv(key)


def _toml(tmp_path: Path, text: str, name: str = "mcpserve.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_defaults_are_safe_for_local_use() -> None:
    settings = load_settings()
    assert settings.transport == "http"
    assert settings.host == "127.0.0.1"
    assert settings.port == 8000
    assert settings.path == "/mcp"
    assert settings.log_level == "info"
    assert settings.allowed_hosts == []
    assert settings.request_state_keys == []
    assert settings.tool_timeout == 60.0
    assert settings.request_state_ttl == 600.0


def test_environment_variables_set_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCPSERVE_PORT", "9001")
    monkeypatch.setenv("MCPSERVE_TRANSPORT", "stdio")
    monkeypatch.setenv("MCPSERVE_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("MCPSERVE_ALLOWED_HOSTS", "a.example, b.example,,")
    monkeypatch.setenv("MCPSERVE_TOOL_TIMEOUT", "2.5")
    settings = load_settings()
    assert settings.port == 9001
    assert settings.transport == "stdio"
    assert settings.log_level == "debug"
    assert settings.allowed_hosts == ["a.example", "b.example"]
    assert settings.tool_timeout == 2.5


def test_unprefixed_aliases_are_accepted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    database = tmp_path / "x.db"
    database.touch()
    monkeypatch.setenv("PORT", "7000")
    monkeypatch.setenv("LOG_LEVEL", "warning")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{database}")
    settings = load_settings()
    assert (settings.port, settings.log_level, settings.database_url) == (
        7000,
        "warning",
        f"sqlite:///{database}",
    )


def test_field_names_alone_never_configure_anything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOST", "0.0.0.0")  # ignored: only MCPSERVE_HOST sets the host
    monkeypatch.setenv("PATH_PREFIX", "x")
    assert load_settings().host == "127.0.0.1"


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        ("MCPSERVE_PORT", "abc", "valid integer"),
        ("MCPSERVE_PORT", "-1", "greater than or equal to 0"),
        ("PORT", "70000", "less than or equal to 65535"),
        ("MCPSERVE_TRANSPORT", "carrier-pigeon", "'stdio' or 'http'"),
        ("LOG_LEVEL", "loud", "'debug'"),
        ("MCPSERVE_PATH", "no-leading-slash", "pattern"),
        ("MCPSERVE_TOOL_TIMEOUT", "0", "greater than 0"),
        ("MCPSERVE_MAX_BODY_BYTES", "10", "greater than or equal to 1024"),
        ("MCPSERVE_PROGRESS_NOTIFICATIONS_PER_SECOND", "-1", "greater than or equal to 0"),
        ("MCPSERVE_NOTIFICATION_BURST", "0", "greater than or equal to 1"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", "only http/protobuf"),
        ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json", "only http/protobuf"),
        ("OTEL_TRACES_SAMPLER_ARG", "1.5", "less than or equal to 1"),
        ("OTEL_TRACES_SAMPLER", "sometimes", "always_on"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318", "http:// or https://"),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "ftp://collector", "http:// or https://"),
        ("OTEL_RESOURCE_ATTRIBUTES", "team", "key=value"),
        ("OTEL_TRACES_EXPORTER", "zipkin", "'otlp'"),
    ],
)
def test_invalid_variable_is_named_in_the_error(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, fragment: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert caught.value.variable == variable
    assert str(caught.value).startswith(f"{variable}: ")
    assert fragment in str(caught.value)


def test_toml_file_sets_fields(tmp_path: Path) -> None:
    path = _toml(tmp_path, 'port = 9100\nlog_level = "error"\nallowed_origins = ["https://a.example"]\n')
    settings = load_settings(config_file=path)
    assert settings.port == 9100
    assert settings.log_level == "error"
    assert settings.allowed_origins == ["https://a.example"]


def test_config_file_can_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MCPSERVE_CONFIG", str(_toml(tmp_path, "port = 9200\n")))
    assert load_settings().port == 9200


def test_precedence_is_flags_then_environment_then_file_then_defaults(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = _toml(tmp_path, 'port = 9000\nhost = "10.0.0.1"\nlog_level = "error"\nauth = "none"\n')
    assert load_settings(config_file=path).port == 9000
    monkeypatch.setenv("MCPSERVE_PORT", "9100")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    settings = load_settings(config_file=path)
    assert (settings.port, settings.host, settings.log_level) == (9100, "10.0.0.1", "debug")
    flagged = load_settings({"port": 9200, "host": None}, config_file=path)
    assert (flagged.port, flagged.host) == (9200, "10.0.0.1")


def test_unprefixed_alias_in_the_environment_beats_the_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PORT", "8123")
    assert load_settings(config_file=_toml(tmp_path, "port = 9000\n")).port == 8123


def test_unknown_key_in_the_file_is_refused(tmp_path: Path) -> None:
    path = _toml(tmp_path, "port = 1\nprot = 2\nbogus = true\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(config_file=path)
    assert caught.value.variable == "MCPSERVE_CONFIG"
    assert "unknown settings bogus, prot" in str(caught.value)


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found") as caught:
        load_settings(config_file=tmp_path / "absent.toml")
    assert caught.value.variable == "MCPSERVE_CONFIG"


def test_invalid_toml_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not valid TOML") as caught:
        load_settings(config_file=_toml(tmp_path, "port = = 1\n"))
    assert caught.value.variable == "MCPSERVE_CONFIG"


def test_invalid_value_in_the_file_names_the_file_and_key(tmp_path: Path) -> None:
    path = _toml(tmp_path, 'port = "eighty"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(config_file=path)
    assert caught.value.variable == "MCPSERVE_CONFIG"
    assert f"{path}: port: Input should be a valid integer" in str(caught.value)


def test_invalid_flag_value_names_the_setting() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"port": 70000})
    assert caught.value.variable == "MCPSERVE_PORT"


def test_unknown_override_is_refused_by_name() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"prot": 1})
    assert caught.value.variable == "prot"


def test_redacted_masks_every_sealing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCPSERVE_REQUEST_STATE_KEYS", f"{secret('first-secret')},{secret('second-secret')}")
    settings = load_settings()
    assert [key.get_secret_value() for key in settings.request_state_keys] == [
        "first-secret",
        "second-secret",
    ]
    redacted = settings.redacted()
    assert redacted["request_state_keys"] == ["**********", "**********"]
    # Field names such as oauth_client_secret contain "secret"; the values must not appear.
    assert "first-secret" not in repr(redacted) and "second-secret" not in repr(redacted)
    assert "first-secret" not in repr(settings)


def test_settings_are_immutable() -> None:
    settings = load_settings()
    with pytest.raises(ValidationError):
        settings.port = 1  # type: ignore[misc]
    assert isinstance(settings, Settings)


def test_per_tool_timeouts_are_a_json_object(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert load_settings().tool_timeouts == {}
    monkeypatch.setenv("MCPSERVE_TOOL_TIMEOUTS", '{"query_database": 5, "search_docs": 0.5}')
    assert load_settings().tool_timeouts == {"query_database": 5.0, "search_docs": 0.5}
    monkeypatch.delenv("MCPSERVE_TOOL_TIMEOUTS")
    path = _toml(tmp_path, "[tool_timeouts]\nquery_database = 7\n")
    assert load_settings(config_file=path).tool_timeouts == {"query_database": 7.0}


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        ("MCPSERVE_TOOL_TIMEOUTS", '{"query_database": 0}', "greater than 0"),
        ("MCPSERVE_TOOL_TIMEOUTS", '{"query_database": -3}', "greater than 0"),
        ("MCPSERVE_TOOL_TIMEOUTS", '{"query_database": "soon"}', "number"),
        ("MCPSERVE_TOOL_TIMEOUTS", "query_database=5", "must be a JSON object"),
        ("MCPSERVE_TOOL_TIMEOUTS", "[5]", "valid dictionary"),
        ("MCPSERVE_TOOL_SCOPES", "nope", "not JSON"),
        ("MCPSERVE_TOOL_SCOPES", '{"t": "scope"}', "valid list"),
    ],
)
def test_bad_per_tool_settings_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, fragment: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert caught.value.variable == variable
    assert fragment in str(caught.value)


def test_a_timeout_for_a_tool_the_server_lacks_is_refused() -> None:
    from mcpserve import MCPServer  # noqa: PLC0415
    from mcpserve.runtime import build_dispatcher  # noqa: PLC0415

    server = MCPServer()

    @server.tool(timeout=3)
    def known() -> str:
        return "ok"

    settings = load_settings({"tool_timeouts": {"known": 1, "typo_tool": 2}})
    with pytest.raises(ConfigError) as caught:
        build_dispatcher(server, settings)
    assert caught.value.variable == "MCPSERVE_TOOL_TIMEOUTS"
    assert "'typo_tool'" in str(caught.value) and "'known'" not in str(caught.value)
    dispatcher = build_dispatcher(server, load_settings({"tool_timeouts": {"known": 1}}))
    tool = server.find_tool("known", None)
    assert tool is not None and tool.timeout == 3
    assert dispatcher.timeout_for(tool) == 1.0
    assert build_dispatcher(server, load_settings()).timeout_for(tool) == 3


def test_tool_timeout_must_be_positive_in_the_decorator() -> None:
    from mcpserve import MCPServer  # noqa: PLC0415

    with pytest.raises(ValueError, match="timeout must be a positive number"):
        MCPServer().tool(name="instant", timeout=0)(lambda: "x")


# -- rate limits -------------------------------------------------------------------------------------
def test_rate_limit_defaults_and_seed_aliases(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert (settings.rate_limit_per_minute, settings.rate_limit_per_hour) == (60, 1000)
    assert settings.redis_url is None
    assert settings.tool_rate_limits == {}
    monkeypatch.setenv("RATE_LIMIT_PER_MINUTE", "0")
    monkeypatch.setenv("RATE_LIMIT_PER_HOUR", "12")
    monkeypatch.setenv("MCPSERVE_TOOL_RATE_LIMITS", '{"query_database": {"per_minute": 5, "concurrency": 2}}')
    settings = load_settings()
    assert (settings.rate_limit_per_minute, settings.rate_limit_per_hour) == (0, 12)
    limits = settings.tool_rate_limits["query_database"]
    assert (limits.per_minute, limits.per_hour, limits.concurrency) == (5, 0, 2)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("MCPSERVE_REDIS_URL", "http://cache:6379", "expected redis://"),
        ("MCPSERVE_REDIS_URL", "redis://cache:99999/0", "port"),
        ("MCPSERVE_REDIS_URL", "redis:///0", "expected redis://"),
        ("MCPSERVE_TOOL_RATE_LIMITS", "per_minute=5", "not JSON"),
        ("MCPSERVE_TOOL_RATE_LIMITS", "[1]", "valid dictionary"),
        ("MCPSERVE_TOOL_RATE_LIMITS", '{"t": {"per_minute": -1}}', "t.per_minute"),
        ("MCPSERVE_TOOL_RATE_LIMITS", '{"t": {"burst": 3}}', "t.burst"),
        ("RATE_LIMIT_PER_HOUR", "-5", "greater than or equal to 0"),
    ],
)
def test_bad_rate_limit_settings_name_their_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert raised.value.variable == variable
    assert message in str(raised.value)


def test_redis_url_forms_and_redaction(monkeypatch: pytest.MonkeyPatch) -> None:
    for url in ("redis://127.0.0.1:6379/0", "rediss://cache.internal", "unix:///run/redis.sock"):
        monkeypatch.setenv("MCPSERVE_REDIS_URL", url)
        assert load_settings().redacted()["redis_url"] == url
    monkeypatch.setenv("MCPSERVE_REDIS_URL", "redis://app:s3cret@cache:6379/0")
    settings = load_settings()
    assert settings.redacted()["redis_url"] == "redis://app:**********@cache:6379/0"
    assert "s3cret" not in repr(settings)
