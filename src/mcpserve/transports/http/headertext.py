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

__all__ = [
    "MAX_ENTRIES",
    "MAX_LENGTH",
    "SECRET_NAMES",
    "SINGLE_NAMES",
    "TextMemo",
    "decoded",
    "repeated_single",
]

MAX_ENTRIES: Final = 1024
MAX_LENGTH: Final = 128
SECRET_NAMES: Final = frozenset({b"authorization", b"cookie", b"proxy-authorization", b"x-api-key"})
# Headers a request may carry once. Repeated, a check that reads one value (the Host guard, the
# Origin check, authentication, the session and the era) could be shown another than the one
# that counts downstream: `Host: evil.example` then `Host: 127.0.0.1` must not pass as either.
SINGLE_NAMES: Final = frozenset(
    {b"host", b"origin", b"authorization", b"mcp-session-id", b"mcp-protocol-version"}
)


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


def repeated_single(raw: list[tuple[bytes, bytes]]) -> str | None:
    """The first of :data:`SINGLE_NAMES` that ``raw`` repeats, if any.

    Callers run it only when :func:`decoded` came out shorter than ``raw`` (some name repeated),
    so requests without repeats pay one length comparison.
    """
    seen: set[bytes] = set()
    for name, _ in raw:
        if name in SINGLE_NAMES:
            if name in seen:
                return name.decode("latin-1")
            seen.add(name)
    return None
