"""``[[upstreams]]`` validation: a bad table stops the start (exit 2) naming the key."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from mcpserve.config import child_environment, header_values, load_settings
from mcpserve.errors import ConfigError
from mcpserve.gateway.config import UpstreamSpec
from mcpserve.gateway.naming import served_name, served_uri, split_name, upstream_uri
from mcpserve.gateway.upstream import Upstream
from mcpserve.server.app import MCPServer
from tests.gateway.support import write_config
from tests.support.processes import ROOT, child_env, mcpserve_argv


def _load(tmp_path: Path, *upstreams: dict[str, object]) -> object:
    return load_settings(config_file=write_config(tmp_path / "gateway.toml", list(upstreams)))


def test_a_valid_table_loads(tmp_path: Path) -> None:
    settings = _load(tmp_path, {"name": "time", "command": "mcp-server-time", "isolation": "per-principal"})
    (spec,) = settings.upstreams  # type: ignore[attr-defined]
    assert (spec.name, spec.kind, spec.isolation) == ("time", "stdio", "per-principal")


@pytest.mark.parametrize(
    ("table", "named"),
    [
        ({"name": "time"}, "give either command"),
        ({"name": "Time", "command": "x"}, "upstreams: 0.name"),
        ({"name": "t", "command": "x", "isolation": "per-call"}, "upstreams: 0.isolation"),
        ({"name": "t", "command": "x", "colour": "blue"}, "upstreams: 0.colour"),
        ({"name": "t", "url": "http://127.0.0.1:1/mcp", "isolation": "shared"}, "isolation: only for stdio"),
        ({"name": "t", "command": "x", "headers": {"A": "b"}}, "headers, era: only for HTTP"),
        ({"name": "t", "url": "ftp://example.com"}, "upstreams: 0.url"),
    ],
)
def test_a_bad_table_names_the_key(tmp_path: Path, table: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigError) as raised:
        _load(tmp_path, table)
    assert named in str(raised.value)


def test_names_must_be_unique(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unique: a"):
        _load(tmp_path, {"name": "a", "command": "x"}, {"name": "a", "command": "y"})


def test_the_cli_exits_2_naming_the_bad_key(tmp_path: Path) -> None:
    config = write_config(tmp_path / "gateway.toml", [{"name": "t", "command": "x", "timeout": -1}])
    done = subprocess.run(
        mcpserve_argv("gateway", "--config", str(config)),
        capture_output=True,
        timeout=60,
        check=False,
        env=child_env(),
    )
    assert done.returncode == 2
    assert b"upstreams: 0.timeout" in done.stderr


def test_the_cli_needs_upstreams(tmp_path: Path) -> None:
    config = tmp_path / "empty.toml"
    config.write_text("")
    done = subprocess.run(
        mcpserve_argv("gateway", "--config", str(config)),
        capture_output=True,
        timeout=60,
        check=False,
        env=child_env(),
    )
    assert done.returncode == 2
    assert b"no [[upstreams]]" in done.stderr


def test_a_missing_header_secret_stops_the_mount(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MCPSERVE_TEST_ABSENT", raising=False)
    upstream = Upstream.http(
        "http://127.0.0.1:1/mcp", headers={"Authorization": {"env": "MCPSERVE_TEST_ABSENT"}}
    )
    with pytest.raises(ConfigError, match=r"upstreams\.remote\.headers\.Authorization"):
        MCPServer().mount("remote", upstream)


def test_header_values_come_from_literals_variables_and_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MCPSERVE_TEST_TOKEN", "from-env")
    (tmp_path / "token").write_text("from-file\n")
    spec = UpstreamSpec(
        name="r",
        url="http://127.0.0.1:1/mcp",
        headers={
            "A": "plain",
            "B": {"value": "literal"},
            "C": {"env": "MCPSERVE_TEST_TOKEN", "prefix": "Bearer "},
            "D": {"file": str(tmp_path / "token")},
        },
    )
    assert header_values(spec) == {"A": "plain", "B": "literal", "C": "Bearer from-env", "D": "from-file"}
    unreadable = UpstreamSpec(
        name="r", url="http://127.0.0.1:1/mcp", headers={"E": {"file": str(tmp_path / "absent")}}
    )
    with pytest.raises(ConfigError, match="cannot read"):
        header_values(unreadable)


def test_the_child_environment_is_an_allowlist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCPSERVE_API_KEYS", "x" * 20)
    monkeypatch.setenv("LANG", "C.UTF-8")
    spec = UpstreamSpec(name="t", command="x", env={"ONLY_MINE": "1"})
    env = child_environment(spec)
    assert env["ONLY_MINE"] == "1" and env["LANG"] == "C.UTF-8"
    assert "MCPSERVE_API_KEYS" not in env


def test_names_are_always_prefixed_and_reversible() -> None:
    assert served_name("time", "get_current_time") == "time__get_current_time"
    assert split_name("time__get_current_time") == ("time", "get_current_time")
    assert split_name("plain") is None
    assert served_uri("files", "file:///etc/motd") == "files+file:///etc/motd"
    assert upstream_uri("files", "files+file:///etc/motd") == "file:///etc/motd"
    assert upstream_uri("files", "other+file:///x") is None


def test_the_effective_configuration_shows_upstreams_without_their_secrets() -> None:
    spec = UpstreamSpec(
        name="docs",
        url="https://user:pw@mcp.example.com/mcp",
        headers={"A": "literal-secret", "B": {"env": "DOCS_TOKEN", "prefix": "Bearer "}},
    )
    stdio = UpstreamSpec(name="time", command="mcp-server-time", env={"API_TOKEN": "env-secret"})
    shown = json.dumps(load_settings({"upstreams": [spec, stdio]}).redacted())
    assert "literal-secret" not in shown and "env-secret" not in shown and ":pw@" not in shown
    assert '"B": {"env": "DOCS_TOKEN"}' in shown
    assert '"API_TOKEN": "**' in shown
    assert "mcp.example.com/mcp" in shown


def test_the_example_configuration_loads() -> None:
    settings = load_settings(config_file=ROOT / "examples" / "gateway.toml")
    assert [spec.name for spec in settings.upstreams] == ["everything", "time"]
    assert not settings.upstreams[0].tools.admits("get-env")
