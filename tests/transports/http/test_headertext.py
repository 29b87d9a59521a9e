"""Header text memo: same text as a plain latin-1 decode, bounded, and never holding credentials."""

from __future__ import annotations

import pytest

from mcpserve.transports.http import headertext
from mcpserve.transports.http.headertext import MAX_ENTRIES, MAX_LENGTH, SECRET_NAMES, TextMemo, decoded


def test_decoded_equals_a_plain_latin1_decode_including_non_ascii_bytes() -> None:
    raw = [(b"host", b"127.0.0.1:8000"), (b"x-note", b"caf\xe9 \xff"), (b"accept", b"application/json")]
    assert decoded(raw) == {k.decode("latin-1"): v.decode("latin-1") for k, v in raw}


def test_repeated_bytes_are_answered_from_the_memo() -> None:
    memo = TextMemo()
    first = memo[b"application/json"]
    again = b"application/" + b"json".lower()  # built at run time: another bytes object
    assert memo[again] is first


@pytest.mark.parametrize("name", sorted(SECRET_NAMES))
def test_credentials_are_decoded_but_never_remembered(monkeypatch: pytest.MonkeyPatch, name: bytes) -> None:
    memo = TextMemo()
    monkeypatch.setattr(headertext, "_MEMO", memo)
    value = b"Bearer s3cret-token-value"
    assert decoded([(name, value)]) == {name.decode(): value.decode()}
    assert value not in memo
    assert name in memo  # the header's name is not a secret


def test_long_values_are_decoded_but_not_kept() -> None:
    memo = TextMemo()
    long_value = b"x" * (MAX_LENGTH + 1)
    assert memo[long_value] == long_value.decode()
    assert long_value not in memo


def test_a_full_memo_starts_over_instead_of_growing() -> None:
    memo = TextMemo()
    for n in range(MAX_ENTRIES):
        memo[b"v%d" % n]
    assert len(memo) == MAX_ENTRIES
    assert memo[b"one more"] == "one more"
    assert len(memo) == 1
