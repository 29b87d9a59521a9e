"""docs/configuration.md lists every setting with its variables and default, so it cannot drift."""

from __future__ import annotations

from typing import Any

from mcpserve.config import Settings, _env_names
from tests.support.processes import ROOT


def _default_text(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | dict):
        return ",".join(value) if value else "empty"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _rows() -> dict[str, list[str]]:
    rows = {}
    for line in (ROOT / "docs" / "configuration.md").read_text().splitlines():
        if line.startswith("| `") and line.count("|") >= 5:
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            rows[cells[0].strip("`")] = cells
    return rows


def test_every_setting_is_documented_with_its_variables_and_default() -> None:
    rows = _rows()
    for name, field in Settings.model_fields.items():
        assert name in rows, f"docs/configuration.md has no row for {name}"
        _, variables, default, meaning = rows[name][:4]
        assert variables == ", ".join(f"`{v}`" for v in _env_names(name)), name
        assert default == f"`{_default_text(field.get_default(call_default_factory=True))}`", name
        assert meaning, name
    settings_rows = {n for n in rows if not n.startswith("/")}
    assert settings_rows <= set(Settings.model_fields), "rows for settings that do not exist"
