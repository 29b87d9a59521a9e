"""Rules the suite holds itself to: a missing Node tool is a failure under ``make test``."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support import servers
from tests.support.processes import ROOT


def test_a_missing_node_tool_fails_when_required_and_skips_otherwise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    absent = tmp_path / "bin" / "node"
    monkeypatch.setattr(servers, "REQUIRE_TOOLS", True)
    with pytest.raises(pytest.fail.Exception, match=r"node-tools\.sh"):
        servers.require_tool(absent)
    monkeypatch.setattr(servers, "REQUIRE_TOOLS", False)
    with pytest.raises(pytest.skip.Exception):
        servers.require_tool(absent)
    absent.parent.mkdir()
    absent.touch()
    assert servers.require_tool(absent) == absent


def test_make_test_requires_the_tools() -> None:
    dry_run = subprocess.run(
        ["make", "-n", "pytest"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    (line,) = [line for line in dry_run.stdout.splitlines() if "-m pytest" in line]
    assert line.startswith("MCPSERVE_TEST_REQUIRE_TOOLS=1 ")


def test_the_tools_folder_follows_the_variable_node_tools_sh_honours(tmp_path: Path) -> None:
    assert servers.tools_dir({"MCPSERVE_TOOLS_DIR": str(tmp_path)}) == tmp_path
    assert servers.tools_dir({}) == ROOT / ".tools"
