"""Better Auth's JWTs: verified with the public keys Better Auth publishes (its JWKS), with PyJWT.

Better Auth's JWT plugin signs with an asymmetric key (EdDSA over Ed25519 by default; ES256,
ES512, RS256, PS256 on request) and names it by `kid`. The key, and with it the algorithm, is
looked up by that `kid` in the key set; the token's own `alg` only has to agree with it.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import jwt

from adapters.tokens import ASYMMETRIC_ALGORITHMS, LEEWAY, VerifiedTokens, token_times
from application.errors import (
    IdentityProviderUnavailable,
    InvalidToken,
    InvalidTokenSignature,
    TokenExpired,
)
from application.ports import ExternalIdentity, TokenClaims

log = logging.getLogger("todo_api.better_auth")

REFRESH_SECONDS = 600.0
"""The key set is fetched again at least this often, so that a key Better Auth removed stops
being accepted."""
REFETCH_LIMIT_SECONDS = 10.0
"""At most one fetch in this long, however many unknown `kid`s arrive: made-up `kid`s cannot
make todo-api hammer Better Auth."""
FETCH_TIMEOUT_SECONDS = 3.0
RETRY_AFTER_SECONDS = int(REFETCH_LIMIT_SECONDS)

# The key types a JWKS may use here. Symmetric ("oct") keys never: a public key set is public,
# and a key anyone can read must not verify an HMAC.
_ASYMMETRIC_KEY_TYPES = frozenset({"OKP", "EC", "RSA"})

JwksFetcher = Callable[[], Awaitable[Mapping[str, Any]]]
"""Fetches the key set document; raises JwksUnavailable when it cannot."""


class JwksUnavailable(Exception):
    """The key set could not be fetched (unreachable, an error status, not a key set)."""


def http_jwks_fetcher(url: str, *, timeout: float = FETCH_TIMEOUT_SECONDS) -> JwksFetcher:
    """Fetches the key set over HTTP(S), on the event loop, without blocking it."""
    # Imported here, when Better Auth is configured: a process without it is 5 MB smaller.
    import httpx

    async def fetch() -> Mapping[str, Any]:
        try:
            # A client per fetch: fetches are rare (at most one in REFETCH_LIMIT_SECONDS).
            async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
                response = await client.get(url, headers={"accept": "application/json"})
                response.raise_for_status()
                document = response.json()
        except (httpx.HTTPError, ValueError) as error:
            raise JwksUnavailable(f"{url}: {error!r}") from error
        if not isinstance(document, dict):
            raise JwksUnavailable(f"{url}: not a JSON object")
        return document

    return fetch


def _keys_of(document: Mapping[str, Any]) -> dict[str, jwt.PyJWK]:
    """The usable keys of a key set by kid; keys of other types or that PyJWT cannot read are
    left out rather than failing the whole set."""
    entries = document.get("keys")
    if not isinstance(entries, list):
        raise JwksUnavailable("not a key set: no list of keys")
    keys = {}
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
            continue
        if entry.get("kty") not in _ASYMMETRIC_KEY_TYPES or entry.get("use", "sig") != "sig":
            continue
        try:
            key = jwt.PyJWK(entry)
        except jwt.PyJWTError as error:
            log.warning("left out JWKS key %s: %s", entry["kid"], error)
            continue
        if key.algorithm_name in ASYMMETRIC_ALGORITHMS:
            keys[entry["kid"]] = key
    return keys


class JwksKeys:
    """Better Auth's public keys, cached for the process: fetched when a `kid` is unknown (at
    most once in REFETCH_LIMIT_SECONDS) and when the set is older than REFRESH_SECONDS. While
    Better Auth cannot be reached, the keys already fetched keep working."""

    def __init__(
        self,
        fetch: JwksFetcher,
        *,
        clock: Callable[[], float] = time.monotonic,
        refresh_seconds: float = REFRESH_SECONDS,
        refetch_limit_seconds: float = REFETCH_LIMIT_SECONDS,
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._refresh_seconds = refresh_seconds
        self._refetch_limit_seconds = refetch_limit_seconds
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._reachable = True
        self._lock = asyncio.Lock()

    async def key(self, kid: str) -> jwt.PyJWK:
        """The key named kid. Raises InvalidTokenSignature when Better Auth has no such key (or
        was asked too recently to ask again), IdentityProviderUnavailable when it cannot be
        reached and the key is not cached."""
        if kid not in self._keys or self._stale():
            await self._refetch()
        key = self._keys.get(kid)
        if key is not None:
            return key
        if not self._reachable:
            raise IdentityProviderUnavailable(RETRY_AFTER_SECONDS)
        raise InvalidTokenSignature()

    def _stale(self) -> bool:
        return self._fetched_at is None or self._clock() - self._fetched_at >= self._refresh_seconds

    async def _refetch(self) -> None:
        async with self._lock:
            # Whoever held the lock before may just have fetched; the limit counts attempts,
            # successful or not, so a Better Auth that is down is asked once per interval.
            attempted = self._attempted_at
            if attempted is not None and self._clock() - attempted < self._refetch_limit_seconds:
                return
            self._attempted_at = self._clock()
            try:
                keys = _keys_of(await self._fetch())
            except JwksUnavailable as error:
                self._reachable = False
                log.warning("Better Auth's key set could not be fetched: %s", error)
                return
            self._keys, self._fetched_at, self._reachable = keys, self._clock(), True


class BetterAuthTokens:
    """Verifies Better Auth's JWTs: signed by a key of its JWKS, issued by `issuer` for
    `audience`, with `sub`, `iat`, `exp` and `email`."""

    def __init__(self, keys: JwksKeys, *, issuer: str, audience: str) -> None:
        self._keys = keys
        self._issuer = issuer
        self._audience = audience
        # With the kid and the key that verified each: the frontend sends its token with every
        # request, and an Ed25519 or RSA check costs a request's worth of work.
        self._verified: VerifiedTokens[tuple[str, jwt.PyJWK, TokenClaims]] = VerifiedTokens()

    async def verify(self, token: str) -> TokenClaims:
        known = self._verified.get(token)
        # The key is asked for on every use, so a remembered token stops being accepted when
        # its key does: removed from the set, or replaced under its kid.
        if known is not None and await self._keys.key(known[0]) is known[1]:
            return known[2]
        kid, key, claims = await self._verified_afresh(token)
        self._verified.add(token, claims.expires_at, (kid, key, claims))
        return claims

    async def _verified_afresh(self, token: str) -> tuple[str, jwt.PyJWK, TokenClaims]:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError:
            raise InvalidToken() from None
        if not isinstance(kid, str) or not kid:
            raise InvalidToken()
        key = await self._keys.key(kid)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                # The key's algorithm, whatever the token says: a token claiming another is
                # refused, so none can pick how it is checked.
                algorithms=[key.algorithm_name],
                audience=self._audience,
                issuer=self._issuer,
                leeway=LEEWAY,
                options={"require": ["sub", "iat", "exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise TokenExpired() from None
        except jwt.InvalidSignatureError:
            raise InvalidTokenSignature() from None
        except jwt.PyJWTError:
            raise InvalidToken() from None
        return kid, key, _claims(claims)


def _claims(claims: dict[str, Any]) -> TokenClaims:
    subject, email = claims["sub"], claims.get("email")
    verified, jti = claims.get("emailVerified", False), claims.get("jti")
    if not isinstance(subject, str) or not subject or not isinstance(email, str) or not email:
        raise InvalidToken()
    if not isinstance(verified, bool) or not (jti is None or isinstance(jti, str)):
        raise InvalidToken()
    issued_at, expires_at = token_times(claims)
    return TokenClaims(
        subject=subject,
        issued_at=issued_at,
        expires_at=expires_at,
        token_id=jti,
        identity=ExternalIdentity(
            issuer=claims["iss"], subject=subject, email=email, email_verified=verified
        ),
    )
