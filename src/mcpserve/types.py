"""Type aliases shared across the package."""

from __future__ import annotations

from typing import Any, TypeAlias

JSONObject: TypeAlias = dict[str, Any]
RequestId: TypeAlias = str | int

__all__ = ["JSONObject", "RequestId"]
