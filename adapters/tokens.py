"""JWT access tokens (HS256) with PyJWT."""

import secrets
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

import jwt

from application.errors import InvalidToken, InvalidTokenSignature, TokenExpired
from application.ports import IssuedToken, TokenClaims
from domain.users import User

TOKEN_LIFETIME = timedelta(hours=24)
_ALGORITHM = "HS256"
LEEWAY = timedelta(seconds=30)
_LEEWAY_SECONDS = LEEWAY.total_seconds()


GENERATION_CLAIM = "gen"
"""The user's token generation at issue (a logout-all or password change starts a new one)."""

VERIFIED_TOKENS_KEPT = 4096
"""The most recently used verified tokens a verifier remembers, so that their signatures are
not checked again: a few MB for tokens as this service or Better Auth issue them, at most
about 40 MB for tokens as long as the Authorization header allows (which only holders of the
signing key can sign)."""

_Found = TypeVar("_Found")


class VerifiedTokens(Generic[_Found]):
    """Tokens verified lately, each with what its verification found. A client sends the same
    token with every request: its signature is checked once, its expiry on every use. (Once
    accepted, a token's iat and nbf only grow older; one that has expired since is forgotten
    here, and decoded again to fail as any expired token does.)"""

    def __init__(self) -> None:
        self._entries: OrderedDict[str, tuple[float, _Found]] = OrderedDict()

    def get(self, token: str) -> _Found | None:
        entry = self._entries.get(token)
        if entry is None or time.time() >= entry[0]:
            return None
        self._entries.move_to_end(token)
        return entry[1]

    def add(self, token: str, expires_at: datetime, found: _Found) -> None:
        self._entries[token] = (expires_at.timestamp() + _LEEWAY_SECONDS, found)
        if len(self._entries) > VERIFIED_TOKENS_KEPT:
            self._entries.popitem(last=False)

    def __iter__(self) -> Iterator[str]:
        """The tokens remembered, the least recently used first."""
        return iter(self._entries)


class JwtTokenService:
    """Signs with `secret`; verifies with it or any of `previous_secrets`, so the secret can be
    rotated without logging everyone out."""

    def __init__(
        self,
        secret: str,
        *,
        previous_secrets: Sequence[str] = (),
        lifetime: timedelta = TOKEN_LIFETIME,
    ) -> None:
        self._secret = secret
        self._verification_secrets = (secret, *previous_secrets)
        self._lifetime = lifetime
        self._verified: VerifiedTokens[TokenClaims] = VerifiedTokens()

    def issue(self, user: User, now: datetime) -> IssuedToken:
        claims = {
            "sub": str(user.id),
            "iat": now,
            "exp": now + self._lifetime,
            "jti": secrets.token_urlsafe(16),
            GENERATION_CLAIM: user.token_generation,
        }
        token = jwt.encode(claims, self._secret, algorithm=_ALGORITHM)
        return IssuedToken(token=token, expires_in_seconds=int(self._lifetime.total_seconds()))

    async def verify(self, token: str) -> TokenClaims:
        return self.decode(token)

    def decode(self, token: str) -> TokenClaims:
        known = self._verified.get(token)
        if known is not None:
            return known
        claims = self._decoded(token)
        self._verified.add(token, claims.expires_at, claims)
        return claims

    def _decoded(self, token: str) -> TokenClaims:
        claims = self._verified_claims(token)
        subject, jti = claims["sub"], claims.get("jti")
        generation = claims.get(GENERATION_CLAIM)
        if not isinstance(subject, str) or not (jti is None or isinstance(jti, str)):
            raise InvalidToken()
        if generation is not None and (type(generation) is not int or generation < 0):
            raise InvalidToken()
        issued_at, expires_at = token_times(claims)
        return TokenClaims(
            subject=subject,
            issued_at=issued_at,
            expires_at=expires_at,
            token_id=jti,
            generation=generation,
        )

    def _verified_claims(self, token: str) -> dict[str, Any]:
        for secret in self._verification_secrets:
            try:
                claims: dict[str, Any] = jwt.decode(
                    token,
                    secret,
                    algorithms=[_ALGORITHM],  # an allow-list: none, RS256 and others are refused
                    leeway=LEEWAY,
                    options={"require": ["sub", "iat", "exp"]},
                )
                return claims
            except jwt.InvalidSignatureError:
                continue
            except jwt.ExpiredSignatureError:
                raise TokenExpired() from None
            except jwt.PyJWTError:
                raise InvalidToken() from None
        raise InvalidTokenSignature()


def token_times(claims: Mapping[str, Any]) -> tuple[datetime, datetime]:
    """iat and exp as moments; InvalidToken unless both are numbers of a representable time."""
    # PyJWT lets numeric strings and booleans through as times; a NumericDate is a number.
    if any(type(claims[name]) not in (int, float) for name in ("iat", "exp")):
        raise InvalidToken()
    try:
        return (
            datetime.fromtimestamp(claims["iat"], UTC),
            datetime.fromtimestamp(claims["exp"], UTC),
        )
    except (OverflowError, ValueError, OSError):  # an exp far beyond the year 9999
        raise InvalidToken() from None


class ProviderTokens(Protocol):
    async def verify(self, token: str) -> TokenClaims: ...


class TokenKinds:
    """todo-api's own tokens and, when configured, Better Auth's, each verified by its own
    adapter. Which one is chosen by the token's header, but each verifier fixes its own
    algorithms, so a token cannot choose how it is checked: HS256 only ever against the
    shared secret, an asymmetric one only against Better Auth's published keys. Tokens are
    issued by todo-api's own service."""

    def __init__(self, own: JwtTokenService, *, better_auth: ProviderTokens | None = None) -> None:
        self._own = own
        self._better_auth = better_auth

    def issue(self, user: User, now: datetime) -> IssuedToken:
        return self._own.issue(user, now)

    async def verify(self, token: str) -> TokenClaims:
        if self._better_auth is not None and _algorithm_of(token) in ASYMMETRIC_ALGORITHMS:
            return await self._better_auth.verify(token)
        return self._own.decode(token)  # HS256 or refused


ASYMMETRIC_ALGORITHMS = frozenset(
    {"EdDSA", "ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
)


def _algorithm_of(token: str) -> object:
    try:
        return jwt.get_unverified_header(token).get("alg")
    except jwt.PyJWTError:
        return None
