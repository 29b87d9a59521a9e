"""Opaque, stable cursors over a deterministic list."""

from __future__ import annotations

import base64
import binascii

from mcpserve.errors import InvalidParams
from mcpserve.types import JSONObject

__all__ = ["paginate"]

_PREFIX = "o:"


def _encode(offset: int) -> str:
    return base64.urlsafe_b64encode(f"{_PREFIX}{offset}".encode()).decode().rstrip("=")


def _decode(cursor: object, total: int) -> int:
    if cursor is None or cursor == "":
        return 0
    if not isinstance(cursor, str) or len(cursor) > 64:
        raise InvalidParams("Invalid cursor")
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidParams("Invalid cursor") from None
    if not text.startswith(_PREFIX) or not text[len(_PREFIX) :].isdigit():
        raise InvalidParams("Invalid cursor")
    offset = int(text[len(_PREFIX) :])
    if offset > total:
        raise InvalidParams("Invalid cursor")
    return offset


def paginate(items: list[JSONObject], cursor: object, page_size: int) -> tuple[list[JSONObject], str | None]:
    """One page of ``items`` starting at ``cursor``, and the cursor of the next page (or None)."""
    start = _decode(cursor, len(items))
    end = start + page_size
    return items[start:end], (_encode(end) if end < len(items) else None)
