"""docs/errors.md against the code: every error class, code and status, and the tool error texts."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from mcpserve import errors
from mcpserve.errors import ProtocolError, ResourceNotFound, ToolError
from mcpserve.server import failures
from mcpserve.server.tools import Tool

DOC = (Path(__file__).resolve().parents[1] / "docs" / "errors.md").read_text()
# Codes allocated to policies (rate limits, authentication) with their statuses.
ALLOCATED = {-31000: 503, -31001: 429, -31010: 401, -31011: 403}


def _table(heading: str) -> list[list[str]]:
    section = DOC.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")][2:]  # skip header + rule
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]


CODE_ROWS = {(int(row[0].strip("`")), row[1].strip("`")): row for row in _table("JSON-RPC error codes")}
STATUS_ROWS = {int(row[0]): row[1] for row in _table("HTTP statuses")}


def _classes() -> list[type[ProtocolError]]:
    found = [getattr(errors, name) for name in errors.__all__]
    # ProtocolError itself is the abstract root; only its subclasses are ever sent.
    return [
        cls
        for cls in found
        if isinstance(cls, type) and issubclass(cls, ProtocolError) and cls is not ProtocolError
    ]


def _status_cell(value: int | None) -> str:
    return "—" if value is None else str(value)


@pytest.mark.parametrize("cls", _classes(), ids=lambda cls: cls.__name__)
def test_every_error_class_is_documented_with_its_code_and_statuses(cls: type[ProtocolError]) -> None:
    row = CODE_ROWS.get((cls.code, cls.__name__))
    assert row is not None, f"docs/errors.md has no row for {cls.code} {cls.__name__}"
    exc = cls.__new__(cls)  # statuses depend on the class only
    modern, legacy = row[3], row[4]
    assert modern == str(failures.http_status(exc, "modern"))
    if legacy != "—":
        assert legacy == str(failures.http_status(exc, "legacy"))
    assert str(cls.http_status) in {str(s) for s in STATUS_ROWS}


def test_codes_that_change_with_the_era_are_documented() -> None:
    row = CODE_ROWS[(ResourceNotFound.legacy_code, "ResourceNotFound")]
    assert row[3] == "—" and row[4] == "200"


def test_every_documented_code_is_ours_or_the_specs() -> None:
    for code, name in CODE_ROWS:
        ours = not failures.is_reserved_code(code)
        assert ours == (code in ALLOCATED), (code, name)
    for code, status in ALLOCATED.items():
        rows = [row for (c, _), row in CODE_ROWS.items() if c == code]
        assert rows, code
        for row in rows:  # a code may be shared by a class and its subclasses
            assert row[3] == row[4] == str(status)
        assert status in STATUS_ROWS


def test_the_status_table_lists_what_the_endpoint_sends() -> None:
    assert set(STATUS_ROWS) == {200, 202, 500} | {cls.http_status for cls in _classes()} | set(
        ALLOCATED.values()
    )


class _Weather(BaseModel):
    celsius: float


def _tool_error(fn: Any) -> str:
    tool = Tool.from_function(fn, name="name")
    with pytest.raises(ToolError) as caught:
        tool.to_result(fn())
    return str(caught.value)


def test_tool_error_texts_match_the_code() -> None:
    assert failures.timeout_result("query_database", 30)["content"][0]["text"] in DOC
    assert failures.timeout_result("name", 12)["content"][0]["text"].replace("12", "N") in DOC

    def unknown_type() -> Any:
        return object()

    def not_finite() -> float:
        return float("nan")

    def off_schema() -> _Weather:
        return {"celsius": "warm"}  # type: ignore[return-value]

    for fn in (unknown_type, not_finite, off_schema):
        assert f"`{_tool_error(fn)}`" in DOC
    assert re.search(r"`Tool 'name' failed: Internal error \(error id …\)`", DOC)
