"""Authenticated encryption of small opaque tokens under a rotating AES-256-GCM key ring.

A token is ``"v1." + base64url_nopad(key_id || nonce || ciphertext_and_tag)``: ASCII, URL-safe, and
self-describing enough that :meth:`KeyRing.open` picks the key by its 4-byte id instead of trying each
one. The first key seals; every key opens, so rotation is "prepend the new key, drop the old one once
its tokens have expired". Every way a token can fail to open raises the same :class:`InvalidToken`,
so callers cannot leak which check failed.

Nonces are random 96-bit values, which keeps a single key safe for well over a billion seals (the
NIST bound for random GCM nonces is 2**32 messages per key); rotate long before that.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
from collections.abc import Sequence
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["InvalidToken", "KeyRing", "MAX_TOKEN_CHARS"]

PREFIX: Final = "v1."
KEY_BYTES: Final = 32
KEY_ID_BYTES: Final = 4
NONCE_BYTES: Final = 12
TAG_BYTES: Final = 16
#: Longest token :meth:`KeyRing.open` will look at; longer input is rejected before any decoding.
MAX_TOKEN_CHARS: Final = 64 * 1024

_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")
_MIN_PAYLOAD = KEY_ID_BYTES + NONCE_BYTES + TAG_BYTES


class InvalidToken(ValueError):
    """A token that does not open. The message never says why."""

    def __init__(self) -> None:
        super().__init__("token is invalid")


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str, *, padding_allowed: bool) -> bytes | None:
    """Strict base64url decoding: URL-safe alphabet only, canonical encoding.

    Canonical means re-encoding gives the same text back, so two distinct token strings never decode
    to the same bytes (otherwise flipping the unused low bits of the last character would still open).
    Tokens are never padded; operator-supplied keys may be.
    """
    body = text.rstrip("=") if padding_allowed else text
    if body != text and len(text) != len(body) + (-len(body) % 4):
        return None
    if not _BASE64URL.fullmatch(body) or len(body) % 4 == 1:
        return None
    try:
        data = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        return None
    return data if _b64encode(data) == body else None


def _key_id(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()[:KEY_ID_BYTES]


class KeyRing:
    """AES-256-GCM keys: ``keys[0]`` seals, all of them open (rotation order is ``[new, old]``)."""

    __slots__ = ("_by_id", "_sealer", "_sealer_id")

    def __init__(self, keys: Sequence[bytes]) -> None:
        # A bare bytes object is itself a Sequence (of ints); catch that mistake explicitly.
        if isinstance(keys, bytes | bytearray | memoryview | str):
            raise TypeError("KeyRing takes a sequence of keys, not a single key")
        if not keys:
            raise ValueError("KeyRing needs at least one key")
        seen: set[bytes] = set()
        # Ids are 32 bits, so two keys may collide by chance; keep a list per id rather than reject.
        by_id: dict[bytes, list[AESGCM]] = {}
        for index, key in enumerate(keys):
            if not isinstance(key, bytes | bytearray):
                raise TypeError(f"key {index} must be bytes")
            material = bytes(key)
            if len(material) != KEY_BYTES:
                raise ValueError(f"key {index} must be exactly {KEY_BYTES} bytes")
            if material in seen:
                raise ValueError(f"key {index} duplicates an earlier key")
            seen.add(material)
            by_id.setdefault(_key_id(material), []).append(AESGCM(material))
        first = bytes(keys[0])
        self._sealer = AESGCM(first)
        self._sealer_id = _key_id(first)
        self._by_id = by_id

    @classmethod
    def ephemeral(cls) -> KeyRing:
        """A ring with one fresh random key: tokens die with the process."""
        return cls([secrets.token_bytes(KEY_BYTES)])

    @classmethod
    def from_strings(cls, values: Sequence[str]) -> KeyRing:
        """Build a ring from base64url key strings (padding optional), as operators configure them."""
        if isinstance(values, str):
            raise TypeError("KeyRing.from_strings takes a sequence of strings, not a single string")
        keys: list[bytes] = []
        for index, value in enumerate(values):
            # Never echo the value: it is (or is meant to be) a secret.
            decoded = _b64decode(value.strip(), padding_allowed=True) if isinstance(value, str) else None
            if decoded is None or len(decoded) != KEY_BYTES:
                raise ValueError(f"key {index} is not the base64url encoding of {KEY_BYTES} bytes")
            keys.append(decoded)
        return cls(keys)

    @staticmethod
    def generate_key_string() -> str:
        """A new random key, base64url without padding, ready for :meth:`from_strings`."""
        return _b64encode(secrets.token_bytes(KEY_BYTES))

    def __repr__(self) -> str:
        count = sum(len(ciphers) for ciphers in self._by_id.values())
        return f"<KeyRing: {count} key{'s' if count != 1 else ''}>"

    def seal(self, plaintext: bytes, associated_data: bytes) -> str:
        """Encrypt and authenticate ``plaintext``, binding it to ``associated_data``."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._sealer.encrypt(nonce, plaintext, self._aad(self._sealer_id, associated_data))
        token = PREFIX + _b64encode(self._sealer_id + nonce + sealed)
        if len(token) > MAX_TOKEN_CHARS:
            # Refuse to mint what open() would refuse to read.
            raise ValueError(f"plaintext too large to seal (token would exceed {MAX_TOKEN_CHARS} chars)")
        return token

    def open(self, token: str, associated_data: bytes) -> bytes:
        """Decrypt a token from :meth:`seal`; :class:`InvalidToken` for anything wrong with it."""
        plaintext = self._open(token, associated_data)
        if plaintext is None:
            raise InvalidToken
        return plaintext

    def _open(self, token: object, associated_data: bytes) -> bytes | None:
        if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS or not token.startswith(PREFIX):
            return None
        payload = _b64decode(token[len(PREFIX) :], padding_allowed=False)
        if payload is None or len(payload) < _MIN_PAYLOAD:
            return None
        key_id = payload[:KEY_ID_BYTES]
        nonce = payload[KEY_ID_BYTES : _MIN_PAYLOAD - TAG_BYTES]
        sealed = payload[_MIN_PAYLOAD - TAG_BYTES :]
        aad = self._aad(key_id, associated_data)
        for cipher in self._by_id.get(key_id, ()):
            try:
                return cipher.decrypt(nonce, sealed, aad)
            except InvalidTag:
                continue
        return None

    @staticmethod
    def _aad(key_id: bytes, associated_data: bytes) -> bytes:
        # Bind the format version and key id too, so a future format can never be confused with v1.
        return PREFIX.encode("ascii") + key_id + associated_data
