"""Better Auth as the tests imitate it: key pairs like those its JWT plugin makes, its tokens'
claims, and a JWKS endpoint that really serves the public keys."""

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import get_default_algorithms

from adapters.better_auth import JwksUnavailable

BETTER_AUTH = "https://auth.example.com"
SUBJECT = "HClj71TbcO6UM1fVN8h7pnaQeXgJ863p"  # Better Auth's ids: 32 characters, not UUIDs


class SigningKey:
    """A key pair as Better Auth keeps one: the private half signs, the public half is in the
    JWKS under `kid`."""

    def __init__(self, algorithm: str, kid: str) -> None:
        self.algorithm = algorithm
        self.kid = kid
        if algorithm == "EdDSA":
            self.private: Any = ed25519.Ed25519PrivateKey.generate()
        elif algorithm == "ES256":
            self.private = ec.generate_private_key(ec.SECP256R1())
        elif algorithm == "ES512":
            self.private = ec.generate_private_key(ec.SECP521R1())
        else:
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    @property
    def jwk(self) -> dict[str, Any]:
        public = get_default_algorithms()[self.algorithm].to_jwk(
            self.private.public_key(), as_dict=True
        )
        return {**public, "kid": self.kid, "alg": self.algorithm}

    def sign(self, claims: dict[str, Any], **header: Any) -> str:
        return jwt.encode(
            claims, self.private, algorithm=self.algorithm, headers={"kid": self.kid, **header}
        )


def better_auth_claims(**overrides: Any) -> dict[str, Any]:
    """The claims of Better Auth's JWT plugin: the user object, sub, iss, aud, iat, exp."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iat": now,
        "name": "Ada",
        "email": "ada@example.com",
        "emailVerified": True,
        "createdAt": "2026-12-06T07:07:47.323Z",
        "updatedAt": "2026-12-06T07:07:47.323Z",
        "id": SUBJECT,
        "sub": SUBJECT,
        "exp": now + 900,
        "iss": BETTER_AUTH,
        "aud": BETTER_AUTH,
    }
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not None}


class FakeJwks:
    """Better Auth's JWKS endpoint: serves `keys`, counts fetches, fails while `down`."""

    def __init__(self, *keys: SigningKey) -> None:
        self.keys = list(keys)
        self.fetches = 0
        self.down = False
        self.extra: list[dict[str, Any]] = []

    async def __call__(self) -> Mapping[str, Any]:
        self.fetches += 1
        await asyncio.sleep(0)  # as a real fetch, other requests run meanwhile
        if self.down:
            raise JwksUnavailable("connection refused")
        return {"keys": [key.jwk for key in self.keys] + self.extra}


def hmac_signed(claims: dict[str, Any], secret: bytes, **header: Any) -> str:
    """HS256 by hand: PyJWT itself refuses to use a public key as an HMAC secret."""
    signing_input = ".".join(
        jwt.utils.base64url_encode(json.dumps(part).encode()).decode()
        for part in ({"alg": "HS256", "typ": "JWT", **header}, claims)
    )
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{jwt.utils.base64url_encode(signature).decode()}"
