"""Header bytes to text, remembered: most requests repeat the same names and most of the values.

The ASGI server hands every request its headers as new ``bytes``; decoding each name and value
was the largest single cost of the endpoint's prologue (callgrind: ~17k instructions for seven
headers). Looking the same bytes up in a dict costs a fraction of a decode.

Bounded: entries of at most :data:`MAX_LENGTH` bytes, at most :data:`MAX_ENTRIES` of them; a
full memo starts over, so clients sending ever-new values cost memory only up to the bound.
Credentials are never remembered (see :data:`SECRET_NAMES`): a process-wide table must not keep
a caller's token alive after its request.
"""

from __future__ import annotations

from typing import Final

__all__ = ["MAX_ENTRIES", "MAX_LENGTH", "SECRET_NAMES", "TextMemo", "decoded"]

MAX_ENTRIES: Final = 1024
MAX_LENGTH: Final = 128
SECRET_NAMES: Final = frozenset({b"authorization", b"cookie", b"proxy-authorization", b"x-api-key"})


class TextMemo(dict[bytes, str]):
    """``memo[raw]`` is ``raw`` decoded as latin-1 (HTTP's byte-for-byte text)."""

    def __missing__(self, raw: bytes) -> str:
        text = raw.decode("latin-1")
        if len(raw) <= MAX_LENGTH:
            if len(self) >= MAX_ENTRIES:
                self.clear()
            self[raw] = text
        return text


_MEMO: Final = TextMemo()


def decoded(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """ASGI header pairs as a dict of text; names arrive lowercased from the server."""
    memo = _MEMO
    secret = SECRET_NAMES
    return {memo[name]: (value.decode("latin-1") if name in secret else memo[value]) for name, value in raw}
