"""Every secret setting also reads from its ``_FILE`` twin, and no secret shows anywhere."""

from __future__ import annotations

import io
import os
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from mcpserve.cli import main
from mcpserve.config import _file_twins, load_settings
from mcpserve.errors import ConfigError
from mcpserve.protocol.sealing import KeyRing
from mcpserve.runtime import configure_logging
from tests.deploy.mcp_client import modern_call
from tests.deploy.serving import serving
from tests.support.logcheck import check_log_lines, secret
from tests.support.servers import free_port

API_KEY = secret("api-key-from-a-file-0123456789")
SECOND_KEY = secret("second-api-key-from-a-file-9876")
STATE_KEY = secret(KeyRing.generate_key_string())
CLIENT_SECRET = secret("oauth-client-secret-from-file")
REDIS_PASSWORD = secret("redis-pw-from-file")
DB_PASSWORD = secret("db-pw-from-file")
OTLP_TOKEN = secret("otlp-collector-token-from-file")

# Each twin, the text its file holds (with the trailing newline editors and `kubectl create
# secret --from-file` leave), and the secrets that must never be shown.
TWINS = {
    "MCP_API_KEYS_FILE": (f"{API_KEY}\n{SECOND_KEY}\n", (API_KEY, SECOND_KEY)),
    "MCPSERVE_REQUEST_STATE_KEYS_FILE": (f"{STATE_KEY}\n", (STATE_KEY,)),
    "MCPSERVE_OAUTH_CLIENT_SECRET_FILE": (f"{CLIENT_SECRET}\r\n", (CLIENT_SECRET,)),
    "MCPSERVE_REDIS_URL_FILE": (f"redis://:{REDIS_PASSWORD}@127.0.0.1:6379/0\n", (REDIS_PASSWORD,)),
    "MCPSERVE_DATABASE_URL_FILE": (
        f"postgresql://reader:{DB_PASSWORD}@127.0.0.1:5432/test\n",
        (DB_PASSWORD,),
    ),
    "OTEL_EXPORTER_OTLP_HEADERS_FILE": (f"authorization=Bearer%20{OTLP_TOKEN}\n", (OTLP_TOKEN,)),
}
SECRETS = [value for _, values in TWINS.values() for value in values]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.upper().startswith(("MCPSERVE_", "MCP_API_KEYS")) or key.upper().startswith("DATABASE_URL"):
            monkeypatch.delenv(key)


def write(directory: Path, name: str, text: str, mode: int = 0o400) -> Path:
    path = directory / name.lower()
    path.write_text(text)
    path.chmod(mode)
    return path


@pytest.fixture
def secret_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    paths = {}
    for variable, (text, _) in TWINS.items():
        paths[variable] = write(tmp_path, variable, text)
        monkeypatch.setenv(variable, str(paths[variable]))
    monkeypatch.setenv("MCPSERVE_OAUTH_ISSUER", "https://issuer.example")
    monkeypatch.setenv("MCPSERVE_OAUTH_INTROSPECTION_URL", "https://issuer.example/introspect")
    monkeypatch.setenv("MCPSERVE_OAUTH_CLIENT_ID", "mcpserve")
    return paths


def test_the_table_covers_every_secret_setting() -> None:
    twins = {twin for pairs in _file_twins().values() for _, twin in pairs}
    assert set(TWINS) <= twins
    # The aliases' twins: DATABASE_URL_FILE is tested below; the traces-only OTLP headers variable
    # is the same setting as OTEL_EXPORTER_OTLP_HEADERS.
    assert twins - set(TWINS) == {"DATABASE_URL_FILE", "OTEL_EXPORTER_OTLP_TRACES_HEADERS_FILE"}
    assert "MCPSERVE_API_KEYS_FILE" not in twins  # that name is the hashed keys file


@pytest.mark.usefixtures("secret_files")
def test_every_secret_is_read_from_its_file_without_the_newline() -> None:
    settings = load_settings()
    assert [k.get_secret_value() for k in settings.api_keys] == [API_KEY, SECOND_KEY]
    assert [k.get_secret_value() for k in settings.request_state_keys] == [STATE_KEY]
    assert settings.oauth_client_secret is not None
    assert settings.oauth_client_secret.get_secret_value() == CLIENT_SECRET
    assert settings.redis_url is not None
    assert settings.redis_url.get_secret_value() == f"redis://:{REDIS_PASSWORD}@127.0.0.1:6379/0"
    assert settings.database_url == f"postgresql://reader:{DB_PASSWORD}@127.0.0.1:5432/test"
    assert settings.otel_exporter_otlp_headers is not None
    assert settings.otel_exporter_otlp_headers.get_secret_value() == f"authorization=Bearer%20{OTLP_TOKEN}"
    assert settings.notices == ()  # every file is 0400


@pytest.mark.usefixtures("secret_files")
def test_no_secret_appears_in_mcpserve_config() -> None:
    result = CliRunner().invoke(main, ["config"])
    assert result.exit_code == 0, result.output
    for value in SECRETS:
        assert value not in result.output
    shown = orjson.loads(result.stdout)
    assert shown["redis_url"] == "redis://:**********@127.0.0.1:6379/0"
    assert shown["api_keys"] == ["**********", "**********"]


@pytest.mark.usefixtures("secret_files")
def test_no_secret_appears_in_the_log() -> None:
    stream = io.BytesIO()
    configure_logging(load_settings(), stream)
    assert check_log_lines(stream.getvalue())  # fails on any registered secret
    for value in SECRETS:
        assert value.encode() not in stream.getvalue()


def test_the_alias_twin_works(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL_FILE", str(write(tmp_path, "db", f"postgresql://r:{DB_PASSWORD}@h/d\n")))
    assert load_settings({"auth": "none"}).database_url == f"postgresql://r:{DB_PASSWORD}@h/d"
    monkeypatch.setenv("MCPSERVE_DATABASE_URL", "postgresql://other@h/d")  # the MCPSERVE_ name wins
    assert load_settings({"auth": "none"}).database_url == "postgresql://other@h/d"


def test_a_world_readable_file_is_warned_about(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "keys", f"{STATE_KEY}\n", mode=0o644)
    monkeypatch.setenv("MCPSERVE_REQUEST_STATE_KEYS_FILE", str(path))
    settings = load_settings({"auth": "none"})
    assert settings.notices == (
        ("warning", f"MCPSERVE_REQUEST_STATE_KEYS_FILE: {path} is readable by every user; chmod o-r it"),
    )
    stream = io.BytesIO()
    configure_logging(settings, stream)
    [warning] = [line for line in check_log_lines(stream.getvalue()) if line["level"] == "warning"]
    assert "readable by every user" in warning["event"]


def test_a_variable_and_its_twin_are_ambiguous(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCPSERVE_OAUTH_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("MCPSERVE_OAUTH_CLIENT_SECRET_FILE", str(write(tmp_path, "s", CLIENT_SECRET)))
    with pytest.raises(ConfigError, match="set either MCPSERVE_OAUTH_CLIENT_SECRET or"):
        load_settings({"auth": "none"})


@pytest.mark.parametrize(
    ("text", "problem"), [(None, "no such file"), ("\n", "is empty"), (b"\xff", "UTF-8")]
)
def test_a_bad_file_is_named_never_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str | bytes | None, problem: str
) -> None:
    path = tmp_path / "secret"
    if isinstance(text, bytes):
        path.write_bytes(text)
    elif text is not None:
        path.write_text(text)
    monkeypatch.setenv("MCPSERVE_REDIS_URL_FILE", str(path))
    with pytest.raises(ConfigError, match=problem) as error:
        load_settings({"auth": "none"})
    assert error.value.variable == "MCPSERVE_REDIS_URL_FILE"


def test_a_directory_is_not_a_secret_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCPSERVE_REDIS_URL_FILE", str(tmp_path))
    with pytest.raises(ConfigError, match="is a directory"):
        load_settings({"auth": "none"})


def test_an_invalid_value_names_the_file_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    short = secret("short-key")
    monkeypatch.setenv("MCP_API_KEYS_FILE", str(write(tmp_path, "keys", f"{short}\n")))
    with pytest.raises(ConfigError) as error:
        load_settings()
    assert error.value.variable == "MCP_API_KEYS_FILE"
    assert short not in str(error.value)


@pytest.mark.slow
def test_a_server_with_every_file_secret_serves_and_logs_none(secret_files: dict[str, Path]) -> None:
    port = free_port()
    env = {k: str(v) for k, v in secret_files.items() if k != "MCPSERVE_DATABASE_URL_FILE"}
    env.update(  # the demo on its bundled SQLite: no PostgreSQL role has the file's password
        MCPSERVE_AUTH="keys",
        MCPSERVE_OAUTH_ISSUER="https://issuer.example",
        MCPSERVE_OAUTH_INTROSPECTION_URL="https://issuer.example/introspect",
        MCPSERVE_OAUTH_CLIENT_ID="mcpserve",
    )
    with serving(port, "--host", "127.0.0.1", "--port", str(port), env=env) as served:
        bearer = {"authorization": f"Bearer {SECOND_KEY}"}
        result = modern_call(served.url, "get_deployment_status", {"service": "checkout-api"}, headers=bearer)
        assert result["isError"] is False
    assert served.lines  # checked against every registered secret by serving()
