"""A real, local OAuth issuer for tests: RSA keys minted with joserfc, the JWKS and an RFC 7662
introspection endpoint served over loopback HTTP from a thread, and key rotation on demand."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs

from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.support.threaded import threaded_http

RESOURCE = "http://127.0.0.1:8000/mcp"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def new_key(kid: str | None = None) -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid or uuid.uuid4().hex[:12]})


class LocalIssuer:
    """``url`` is the issuer identifier; ``jwks_url`` and ``introspection_url`` live under it."""

    def __init__(self) -> None:
        self.key = new_key()
        self.published: list[RSAKey] = [self.key]
        self.raw_jwks: Any = None  # when set, served instead of the published keys
        self.opaque: dict[str, dict[str, Any]] = {}
        self.hits: Counter[str] = Counter()
        self.introspection_auth: list[str | None] = []
        self.url = ""

    @property
    def jwks_url(self) -> str:
        return self.url + "/jwks"

    @property
    def introspection_url(self) -> str:
        return self.url + "/introspect"

    def rotate(self) -> RSAKey:
        """Publish a new signing key instead of the old one; new tokens are signed with it."""
        self.key = new_key()
        self.published = [self.key]
        return self.key

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.url,
            "aud": RESOURCE,
            "sub": "alice",
            "scope": "mcp",
            "iat": now,
            "exp": now + 300,
            "client_id": "test-client",
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def mint(self, key: RSAKey | None = None, alg: str = "RS256", **claims: Any) -> str:
        signer = key or self.key
        return jwt.encode({"alg": alg, "kid": signer.kid, "typ": "at+jwt"}, self.claims(**claims), signer)

    def unsigned(self, **claims: Any) -> str:
        """``alg: none``: a token with no signature at all."""
        header = _b64(json.dumps({"alg": "none", "kid": self.key.kid}).encode())
        return f"{header}.{_b64(json.dumps(self.claims(**claims)).encode())}."

    def hs256_with_public_key(self, **claims: Any) -> str:
        """The algorithm-confusion attack: HMAC keyed with the RSA public key the JWKS publishes."""
        header = _b64(json.dumps({"alg": "HS256", "kid": self.key.kid}).encode())
        payload = _b64(json.dumps(self.claims(**claims)).encode())
        secret = self.key.as_pem(private=False)
        signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        return f"{header}.{payload}.{_b64(signature)}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _json(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                issuer.hits[self.path] += 1
                if self.path == "/jwks":
                    document = {"keys": [k.as_dict(private=False) for k in issuer.published]}
                    self._json(200, document if issuer.raw_jwks is None else issuer.raw_jwks)
                else:
                    self._json(404, {})

            def do_POST(self) -> None:
                issuer.hits[self.path] += 1
                length = int(self.headers.get("content-length", "0"))
                form = parse_qs(self.rfile.read(length).decode())
                issuer.introspection_auth.append(self.headers.get("authorization"))
                token = form.get("token", [""])[0]
                self._json(200, issuer.opaque.get(token, {"active": False}))

        return Handler

    @contextmanager
    def serving(self) -> Iterator[LocalIssuer]:
        with threaded_http(self._handler()) as url:
            self.url = url
            yield self


@contextmanager
def local_issuer() -> Iterator[LocalIssuer]:
    with LocalIssuer().serving() as issuer:
        yield issuer
