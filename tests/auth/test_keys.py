"""API keys: the keys file, MCP_API_KEYS, constant-time lookup, and `mcpserve keys new`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from mcpserve.auth.keys import (
    API_KEY_ISSUER,
    ApiKeyAuthenticator,
    generate_key,
    hash_key,
    load_key_file,
    plain_keys,
)
from mcpserve.cli import main
from mcpserve.errors import ConfigError


def test_keys_new_prints_the_key_once_and_a_table_that_authenticates_it(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["keys", "new", "--principal", "deploy-bot", "--scope", "mcp", "--scope", "deploy:write"]
    )
    assert result.exit_code == 0
    (key,) = re.findall(r"^  (mcps_\S+)$", result.output, re.MULTILINE)
    assert result.output.count(key) == 1
    table = result.output[result.output.index("[[keys]]") :]
    (tmp_path / "keys.toml").write_text(table)
    principal = ApiKeyAuthenticator(load_key_file(tmp_path / "keys.toml")).lookup(key)
    assert principal is not None
    assert (principal.name, principal.scopes, principal.issuer) == (
        "deploy-bot",
        frozenset({"mcp", "deploy:write"}),
        API_KEY_ISSUER,
    )


def test_keys_new_needs_a_principal() -> None:
    assert CliRunner().invoke(main, ["keys", "new"]).exit_code == 2
    assert CliRunner().invoke(main, ["keys", "new", "--principal", " "]).exit_code == 2


def test_generated_keys_are_unique_and_long() -> None:
    keys = {generate_key() for _ in range(50)}
    assert len(keys) == 50
    assert all(k.startswith("mcps_") and len(k) >= 48 for k in keys)


def test_tables_by_label_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "keys.toml"
    path.write_text(f'[keys.ci]\nprincipal = "ci"\nsha256 = "{hash_key("k").upper()}"\n')
    (key,) = load_key_file(path)
    assert key.principal.name == "ci" and key.principal.scopes == frozenset()
    assert repr(key) == "ApiKey(principal='ci')"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("keys = [", "is not valid TOML"),
        ("keys = 3", "'keys' must be an array of tables"),
        ("keys = [1]", "keys[0]: must be a table"),
        ('[[keys]]\nprincipal = "a"\nsha256 = "zz"', "sha256 must be 64 hex digits"),
        ('[[keys]]\nsha256 = "' + "a" * 64 + '"', "principal must be a non-empty string"),
        ('[[keys]]\nprincipal = "a"\nsha256 = "' + "a" * 64 + '"\nscopes = "mcp"', "scopes must be a list"),
        ('[[keys]]\nprincipal = "a"\nsha256 = "' + "a" * 64 + '"\nkey = "plain"', "unknown fields key"),
    ],
)
def test_bad_key_files_name_the_variable(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "keys.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as refused:
        load_key_file(path)
    assert refused.value.variable == "MCPSERVE_API_KEYS_FILE"
    assert message in str(refused.value)


def test_a_missing_file_and_duplicate_keys_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_key_file(tmp_path / "absent.toml")
    with pytest.raises(ConfigError, match="the same key is configured twice"):
        ApiKeyAuthenticator(plain_keys(["same", "same"]))


def test_plain_keys_are_each_their_own_principal_with_every_scope() -> None:
    keys = ApiKeyAuthenticator(plain_keys(["key-one", "key-two"]))
    one, two = keys.lookup("key-one"), keys.lookup("key-two")
    assert one is not None and two is not None
    assert one.key != two.key
    assert one.all_scopes and one.has_scopes({"anything", "at:all"})
    assert "key-one" not in one.name
    assert keys.lookup("key-three") is None
    assert len(keys) == 2
