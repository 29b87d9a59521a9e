"""KeyRing: AES-256-GCM sealing, rotation, strict token parsing and secret hygiene."""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcpserve.protocol.sealing import MAX_TOKEN_CHARS, InvalidToken, KeyRing

OLD = bytes(range(32))
NEW = bytes(range(100, 132))
AAD = b"bound-to-this"
RING = KeyRing([NEW])
TOKEN = RING.seal(b"hello", AAD)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _payload(token: str) -> bytes:
    body = token.removeprefix("v1.")
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))


def _assert_invalid(ring: KeyRing, token: str, aad: bytes = AAD) -> None:
    with pytest.raises(InvalidToken) as caught:
        ring.open(token, aad)
    assert str(caught.value) == "token is invalid"


def test_round_trip() -> None:
    ring = KeyRing.ephemeral()
    for plaintext in (b"", b"x", bytes(range(256)) * 10):
        token = ring.seal(plaintext, AAD)
        assert ring.open(token, AAD) == plaintext


def test_token_format_is_versioned_ascii_url_safe_with_key_id() -> None:
    assert TOKEN.startswith("v1.")
    assert TOKEN.isascii()
    assert set(TOKEN[3:]) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    payload = _payload(TOKEN)
    assert payload[:4] == hashlib.sha256(NEW).digest()[:4]
    assert len(payload) == 4 + 12 + len(b"hello") + 16


def test_each_seal_uses_a_fresh_nonce() -> None:
    assert RING.seal(b"same", AAD) != RING.seal(b"same", AAD)


def test_rotation_old_tokens_open_under_new_ring_until_old_key_dropped() -> None:
    old_token = KeyRing([OLD]).seal(b"state", AAD)
    rotated = KeyRing([NEW, OLD])
    assert rotated.open(old_token, AAD) == b"state"
    _assert_invalid(KeyRing([NEW]), old_token)
    # The first key seals after rotation.
    assert _payload(rotated.seal(b"x", AAD))[:4] == hashlib.sha256(NEW).digest()[:4]
    assert KeyRing([NEW]).open(rotated.seal(b"x", AAD), AAD) == b"x"


def test_wrong_associated_data_is_rejected() -> None:
    _assert_invalid(RING, TOKEN, b"something-else")
    _assert_invalid(RING, TOKEN, b"")


def test_unknown_key_id_is_rejected() -> None:
    _assert_invalid(KeyRing([OLD]), TOKEN)


def test_key_id_swapped_to_another_ring_key_is_rejected() -> None:
    payload = _payload(TOKEN)
    forged = "v1." + _b64(hashlib.sha256(OLD).digest()[:4] + payload[4:])
    _assert_invalid(KeyRing([NEW, OLD]), forged)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "v1.",
        "v2." + TOKEN[3:],
        "V1." + TOKEN[3:],
        TOKEN[3:],
        TOKEN[:-1],
        TOKEN[:20],
        "v1." + _b64(b"\x00" * 31),  # shorter than key id + nonce + tag
        TOKEN + "A",
        TOKEN + "==",
        TOKEN + "===",
        TOKEN.replace("v1.", "v1.+", 1),
        TOKEN[:-1] + "/",
        TOKEN + "é",
        TOKEN[:10] + "\u00e9" + TOKEN[11:],
        TOKEN + " ",
        " " + TOKEN,
        TOKEN + "\n",
    ],
)
def test_malformed_tokens_are_rejected(token: str) -> None:
    _assert_invalid(RING, token)


def test_non_string_token_is_rejected() -> None:
    for token in (None, 42, TOKEN.encode()):
        _assert_invalid(RING, token)  # type: ignore[arg-type]


def test_over_long_token_is_rejected_before_decoding() -> None:
    _assert_invalid(RING, TOKEN + "A" * MAX_TOKEN_CHARS)


def test_seal_refuses_plaintext_whose_token_could_not_be_opened() -> None:
    with pytest.raises(ValueError, match="too large"):
        RING.seal(b"x" * MAX_TOKEN_CHARS, AAD)
    biggest = RING.seal(b"x" * (MAX_TOKEN_CHARS * 3 // 4 - 64), AAD)
    assert len(biggest) <= MAX_TOKEN_CHARS
    assert RING.open(biggest, AAD) == b"x" * (MAX_TOKEN_CHARS * 3 // 4 - 64)


@settings(max_examples=300)
@given(position=st.integers(min_value=0), replacement=st.characters(codec="ascii"))
def test_changing_any_character_breaks_the_token(position: int, replacement: str) -> None:
    index = position % len(TOKEN)
    if TOKEN[index] == replacement:
        return
    _assert_invalid(RING, TOKEN[:index] + replacement + TOKEN[index + 1 :])


@settings(max_examples=300)
@given(position=st.integers(min_value=0), flip=st.integers(min_value=1, max_value=255))
def test_changing_any_byte_of_the_payload_breaks_the_token(position: int, flip: int) -> None:
    payload = bytearray(_payload(TOKEN))
    payload[position % len(payload)] ^= flip
    _assert_invalid(RING, "v1." + _b64(bytes(payload)))


@given(cut=st.integers(min_value=1, max_value=len(TOKEN) - 1))
def test_any_truncation_breaks_the_token(cut: int) -> None:
    _assert_invalid(RING, TOKEN[:cut])


def test_keys_must_be_32_distinct_bytes() -> None:
    with pytest.raises(ValueError, match="at least one key"):
        KeyRing([])
    with pytest.raises(ValueError, match="key 1 must be exactly 32 bytes"):
        KeyRing([NEW, b"short"])
    with pytest.raises(ValueError, match="key 1 duplicates"):
        KeyRing([NEW, NEW])
    with pytest.raises(TypeError, match="not a single key"):
        KeyRing(NEW)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="key 0 must be bytes"):
        KeyRing(["x" * 32])  # type: ignore[list-item]


def test_from_strings_accepts_base64url_with_or_without_padding() -> None:
    ring = KeyRing.from_strings([_b64(NEW), base64.urlsafe_b64encode(OLD).decode()])
    assert ring.open(KeyRing([OLD]).seal(b"x", AAD), AAD) == b"x"
    assert KeyRing([NEW]).open(ring.seal(b"y", AAD), AAD) == b"y"


def test_generated_key_strings_load() -> None:
    first, second = KeyRing.generate_key_string(), KeyRing.generate_key_string()
    assert first != second
    assert len(first) == 43
    assert "=" not in first
    ring = KeyRing.from_strings([first, second])
    assert ring.open(ring.seal(b"z", AAD), AAD) == b"z"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "not base64 at all!",
        _b64(b"x" * 31),
        _b64(b"x" * 33),
        base64.b64encode(b"\xfb" * 32).decode(),  # standard alphabet (+ and /), not URL-safe
        _b64(NEW) + "===",
    ],
)
def test_from_strings_names_the_bad_entry_by_index_without_echoing_it(bad: str) -> None:
    with pytest.raises(ValueError, match=r"^key 1 is not the base64url encoding of 32 bytes$") as caught:
        KeyRing.from_strings([_b64(NEW), bad])
    if bad:
        assert bad not in str(caught.value)


def test_from_strings_rejects_a_bare_string_and_empty_list() -> None:
    with pytest.raises(TypeError):
        KeyRing.from_strings(_b64(NEW))
    with pytest.raises(ValueError, match="at least one key"):
        KeyRing.from_strings([])


def test_repr_never_shows_key_material() -> None:
    ring = KeyRing([NEW, OLD])
    text = repr(ring) + str(ring)
    assert text.count("2 keys") == 2
    for key in (NEW, OLD):
        for shown in (key.hex(), _b64(key), repr(key), base64.b64encode(key).decode()):
            assert shown not in text
    assert not hasattr(ring, "__dict__")
