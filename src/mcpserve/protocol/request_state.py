"""Sealing of the MCP multi-round-trip ``requestState``.

When a ``tools/call``, ``prompts/get`` or ``resources/read`` answers ``resultType: "input_required"``,
the server hands the client an opaque ``requestState`` that comes back on the retry. That string is
attacker-controlled, so it is sealed with a :class:`~mcpserve.protocol.sealing.KeyRing` and bound, as
associated data, to who asked (principal), what (method and target: tool name, prompt name or
resource URI) and with which arguments. A state minted for anyone or anything else does not open.

Every failure raises :class:`~mcpserve.errors.InvalidRequestState` with the same message: a state
from another principal must be indistinguishable from one that never existed.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from typing import Any, Final

import orjson

from mcpserve.errors import InvalidRequestState
from mcpserve.protocol.sealing import InvalidToken, KeyRing

__all__ = ["INVALID_REQUEST_STATE_MESSAGE", "argument_digest", "seal_request_state", "open_request_state"]

INVALID_REQUEST_STATE_MESSAGE: Final = "requestState is invalid or expired; retry the request without it"

# Domain separation: the same key ring may seal other kinds of token; none of them opens as a state.
_DOMAIN: Final = b"mcpserve/requestState/v1\x00"


def argument_digest(arguments: Mapping[str, Any] | None) -> str:
    """SHA-256 (hex) of the arguments serialised with sorted keys, so key order never matters."""
    return hashlib.sha256(orjson.dumps(arguments or {}, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _associated_data(
    principal: str | None, method: str, target: str, arguments: Mapping[str, Any] | None
) -> bytes:
    binding = {
        "principal": principal,
        "method": method,
        "target": target,
        "arguments": argument_digest(arguments),
    }
    return _DOMAIN + orjson.dumps(binding, option=orjson.OPT_SORT_KEYS)


def seal_request_state(
    ring: KeyRing,
    state: Any,
    *,
    principal: str | None,
    method: str,
    target: str,
    arguments: Mapping[str, Any] | None,
    now: float,
    ttl: float,
) -> str:
    """Seal a JSON-able ``state`` for one caller and one request, valid for ``[now, now + ttl)``.

    ``state`` that orjson cannot serialise raises ``TypeError``: that is a bug in the caller.
    """
    if not (math.isfinite(now) and math.isfinite(ttl) and ttl > 0):
        raise ValueError("now must be finite and ttl finite and positive")
    plaintext = orjson.dumps({"exp": now + ttl, "s": state})
    return ring.seal(plaintext, _associated_data(principal, method, target, arguments))


def open_request_state(
    ring: KeyRing,
    token: str,
    *,
    principal: str | None,
    method: str,
    target: str,
    arguments: Mapping[str, Any] | None,
    now: float,
) -> Any:
    """Open a state from :func:`seal_request_state`, checking binding and expiry.

    Raises :class:`~mcpserve.errors.InvalidRequestState` (always the same message) on any failure.
    """
    opened = None
    if isinstance(token, str):
        try:
            aad = _associated_data(principal, method, target, arguments)
        except TypeError:
            aad = None  # arguments that cannot be serialised cannot match any sealed binding either
        opened = _open(ring, token, aad, now) if aad is not None else None
    if opened is None:
        raise InvalidRequestState(INVALID_REQUEST_STATE_MESSAGE)
    return opened[0]


def _open(ring: KeyRing, token: str, aad: bytes, now: float) -> tuple[Any] | None:
    """The state in a 1-tuple (the state itself may be ``None``), or ``None`` when it does not open."""
    try:
        payload = orjson.loads(ring.open(token, aad))
    except (InvalidToken, orjson.JSONDecodeError):
        return None
    if not isinstance(payload, dict) or "s" not in payload:
        return None
    expires = payload.get("exp")
    # bool is an int subclass; a sealed payload never holds one, so treat it as malformed.
    if isinstance(expires, bool) or not isinstance(expires, int | float) or not now < expires:
        return None
    return (payload["s"],)
