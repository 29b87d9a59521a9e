"""The public API, locked: what ``import mcpserve`` and the modules users import offer.

A name added, removed or renamed here is a change to the API users port their servers to, so it
must be made on purpose: this test fails until tests/public_api.txt says the same. The typed part is
checked by mypy (``make typecheck`` covers tests/): decorators keep a tool's signature and
``Context.elicit`` returns the schema's model.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import assert_type

import pytest
from pydantic import BaseModel

import mcpserve
from mcpserve import Context, ElicitationResult, MCPServer

LOCKED = Path(__file__).with_name("public_api.txt")


def _locked() -> dict[str, set[str]]:
    """tests/public_api.txt: ``module.name`` lines, grouped by module."""
    modules: dict[str, set[str]] = {}
    for line in LOCKED.read_text().splitlines():
        if line and not line.startswith("#"):
            module, _, name = line.rpartition(".")
            modules.setdefault(module, set()).add(name)
    return modules


PUBLIC = _locked()


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_each_public_module_exports_exactly_its_locked_names(module: str) -> None:
    exported = importlib.import_module(module).__all__
    assert set(exported) == PUBLIC[module], f"update {LOCKED.name} if the change is meant"
    assert len(set(exported)) == len(exported)


def _modules() -> list[str]:
    found = pkgutil.walk_packages(mcpserve.__path__, "mcpserve.")
    return [m.name for m in found if not m.ispkg and not m.name.endswith("__main__")]  # __main__ runs the CLI


@pytest.mark.parametrize("module", _modules())
def test_every_name_a_module_exports_exists(module: str) -> None:
    loaded = importlib.import_module(module)
    for name in getattr(loaded, "__all__", []):
        assert hasattr(loaded, name), f"{module}.__all__ names {name}, which it does not define"


class Confirm(BaseModel):
    ok: bool


def test_decorators_keep_the_signature_and_elicit_returns_the_model() -> None:
    app = MCPServer("typed")

    @app.tool()
    def add(a: int, b: int) -> int:
        return a + b

    @app.tool()
    async def confirm(ctx: Context) -> bool:
        answer = await ctx.elicit("Sure?", Confirm)
        assert_type(answer, ElicitationResult[Confirm])
        return answer.data is not None and answer.data.ok

    assert_type(add(2, 3), int)
    assert add(2, 3) == 5
    assert app.tool_names() == ["add", "confirm"]
