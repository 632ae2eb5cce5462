"""Use cases of accounts: register, log in and out, who is calling, and account changes."""

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from uuid import UUID

from application.errors import (
    AuthenticationFailed,
    InvalidCredentials,
    InvalidToken,
    NotAuthenticated,
    PasswordlessAccount,
    UserNotFound,
    WrongPassword,
)
from application.identities import AccountLinking
from application.ports import (
    Caller,
    Clock,
    EmailPolicy,
    IdGenerator,
    IssuedToken,
    PasswordHasher,
    PasswordStrengthMeter,
    RevocationStore,
    TokenClaims,
    TokenService,
    TokenSubjects,
    UserRepository,
    ensure_admitted,
)
from application.throttling import LoginThrottle, account_key
from domain.due import timezone_problems
from domain.errors import EmailAlreadyRegistered, FieldError, ValidationFailed, WeakPassword
from domain.users import User, password_problems


@dataclass(frozen=True, slots=True)
class Session:
    token: IssuedToken
    user: User


def _revocation_key(token: str, claims: TokenClaims) -> str:
    # Tokens minted by the frontend may lack a jti; the token's digest identifies them instead.
    return claims.token_id or "sha256:" + hashlib.sha256(token.encode()).hexdigest()


def _user_id(claims: TokenClaims) -> UUID:
    try:
        return UUID(claims.subject)
    except ValueError:
        raise InvalidToken() from None


class AccountService:
    def __init__(
        self,
        *,
        users: UserRepository,
        hasher: PasswordHasher,
        strength: PasswordStrengthMeter,
        tokens: TokenService,
        revocations: RevocationStore,
        token_subjects: TokenSubjects,
        emails: EmailPolicy,
        throttle: LoginThrottle,
        clock: Clock,
        ids: IdGenerator,
        linking: AccountLinking | None = None,
    ) -> None:
        """linking: accounts of an identity provider (Better Auth); None when there is none,
        and only todo-api's own tokens name accounts."""
        self._users = users
        self._hasher = hasher
        self._strength = strength
        self._tokens = tokens
        self._revocations = revocations
        self._token_subjects = token_subjects
        self._emails = emails
        self._throttle = throttle
        self._clock = clock
        self._ids = ids
        self._linking = linking
        self._decoy_hash: str | None = None

    async def register(self, email: str, password: str, client: str | None = None) -> User:
        """Creates an account. Raises ValidationFailed (WeakPassword among them),
        EmailAlreadyRegistered, or TooManyAttempts for a client past its limit."""
        await self._throttle.count_attempt(client)
        problems = password_problems(password)
        try:
            email = self._emails.normalize(email)
        except ValidationFailed as invalid_email:
            problems = invalid_email.errors + problems
        if problems:
            raise ValidationFailed(problems)
        await self._ensure_strong(password, email, field="password")
        if await self._users.get_by_email(email) is not None:
            raise EmailAlreadyRegistered()
        now = self._clock.now()
        user = User(
            id=self._ids.new_id(),
            email=email,
            password_hash=await self._hasher.hash(password),
            created_at=now,
            updated_at=now,
        )
        return await self._users.add(user)

    async def log_in(self, email: str, password: str, client: str | None = None) -> Session:
        """Unknown email and wrong password fail alike, after the same amount of hashing work.
        An email with too many recent failures is locked, registered or not."""
        await self._throttle.count_attempt(client)
        try:
            email, valid = self._emails.normalize(email), True
        except ValidationFailed:
            valid = False
        # Keyed on the normalised address: every spelling that reaches the account (case,
        # full-width letters) shares one counter.
        key = account_key(email)
        async with self._password_attempt(key):
            user = await self._users.get_by_email(email) if valid else None
            # An account without a password (Better Auth's) fails like an unknown email.
            if user is None or user.password_hash is None:
                await self._hasher.verify(password, await self._decoy())
                raise InvalidCredentials()
            if not await self._hasher.verify(password, user.password_hash):
                raise InvalidCredentials()
        return self._session(user, self._clock.now())

    async def authenticate(self, token: str | None) -> User:
        """The user a bearer token speaks for, or the reason it is refused."""
        user, _, _ = await self._token_holder(token)
        return user

    async def caller(self, token: str | None) -> Caller:
        """Whom a bearer token speaks for, from the token alone (signature, expiry, claims):
        whether it is still admitted is for the task repository to check, in the statement
        that does the work. A token of an identity provider is looked up here, and its
        account admitted, first (the account is found through the identity)."""
        claims, revocation_key = await self._verified(token)
        if claims.identity is not None and self._linking is not None:
            user_id = (await self._holder(claims, revocation_key)).id
        else:
            user_id = _user_id(claims)
        return Caller(user_id, revocation_key, claims.issued_at, claims.generation)

    def acting_for(self, user: User) -> Caller:
        """A caller without a token (the command line) acting for the user, in their current
        token generation: refused, as their tokens are, once they are cut off or deleted."""
        return Caller(user.id, None, self._clock.now(), user.token_generation)

    async def log_out(self, token: str | None) -> None:
        """Revokes the token at once, for every process of the service. Only a token that
        would authenticate can log out."""
        _, claims, revocation_key = await self._token_holder(token)
        await self._revocations.revoke(revocation_key, claims.expires_at)

    async def log_out_everywhere(self, user: User) -> None:
        """Revokes every token of the user issued up to now (a lost device)."""
        if await self._users.cut_off_tokens(user.id, self._clock.now()) is None:
            raise UserNotFound()

    async def change_password(
        self, user: User, current_password: str, new_password: str
    ) -> Session:
        """Changes the password and revokes every older token; returns a fresh session. An
        account that signs in through Better Auth has no password to change here."""
        if user.password_hash is None:
            raise PasswordlessAccount()
        await self._confirm_password(user, current_password)
        if problems := password_problems(new_password, field="new_password"):
            raise ValidationFailed(problems)
        await self._ensure_strong(new_password, user.email, field="new_password")
        password_hash = await self._hasher.hash(new_password)
        now = self._clock.now()
        changed = await self._users.cut_off_tokens(user.id, now, password_hash=password_hash)
        if changed is None:
            raise UserNotFound()
        # Issued in the generation the change started: it works at once, older tokens do not.
        return self._session(changed, now)

    async def delete_account(self, user: User, password: str | None) -> None:
        """Deletes the account and all its tasks, once the password confirms it. An account
        without a password (Better Auth's) needs none: its token is the proof."""
        if user.password_hash is not None:
            await self._confirm_password(user, password or "")
        await self.delete(user.id)

    async def change_timezone(self, user: User, timezone: str) -> User:
        """Sets the user's time zone: an IANA name (422 on `timezone` for anything else)."""
        if problems := timezone_problems(timezone, "timezone"):
            raise ValidationFailed(problems)
        changed = await self._users.change_timezone(user.id, timezone)
        if changed is None:
            raise UserNotFound()
        return changed

    async def sign_in_method(self, user: User) -> Literal["password", "better-auth"]:
        """ "better-auth" for an account linked to a Better Auth identity (with or without a
        password), else "password"."""
        linked = self._linking is not None and await self._linking.is_linked(user)
        return "better-auth" if linked else "password"

    async def find_by_email(self, email: str) -> User:
        user = await self._users.get_by_email(self._emails.normalize(email))
        if user is None:
            raise UserNotFound()
        return user

    async def delete(self, user_id: UUID) -> None:
        """Deletes the account and every task of it."""
        if not await self._users.delete(user_id):
            raise UserNotFound()

    async def warm_up(self) -> None:
        """Computes the decoy hash ahead of the first login for an unknown email."""
        await self._decoy()

    def _session(self, user: User, now: datetime) -> Session:
        return Session(token=self._tokens.issue(user, now), user=user)

    async def _ensure_strong(self, password: str, email: str, *, field: str) -> None:
        if advice := await self._strength.weakness(password, [email]):
            raise WeakPassword([FieldError(field, advice)])

    async def _confirm_password(self, user: User, password: str) -> None:
        # Guessing through a stolen token is throttled like guessing through the login.
        assert user.password_hash is not None
        async with self._password_attempt(account_key(user.email)):
            if not await self._hasher.verify(password, user.password_hash):
                raise WrongPassword()

    @asynccontextmanager
    async def _password_attempt(self, key: str) -> AsyncIterator[None]:
        """Counted as a failure up front (raising TooManyFailedLogins past the limit); cleared
        when the block succeeds, kept when it fails, given back when it reached no verdict."""
        await self._throttle.attempt(key)
        try:
            yield
        except AuthenticationFailed:
            raise
        except BaseException:
            await self._throttle.abandoned(key)
            raise
        await self._throttle.succeeded(key)

    async def _token_holder(self, token: str | None) -> tuple[User, TokenClaims, str]:
        """The user a token speaks for, its claims and its revocation key; or why not."""
        claims, revocation_key = await self._verified(token)
        return await self._holder(claims, revocation_key), claims, revocation_key

    async def _holder(self, claims: TokenClaims, revocation_key: str) -> User:
        if claims.identity is not None and self._linking is not None:
            subject = await self._linking.holder(claims.identity, revocation_key)
        else:
            subject = await self._token_subjects.find(_user_id(claims), revocation_key)
        user = subject.user
        ensure_admitted(
            revoked=subject.token_revoked,
            known=user is not None,
            current=user is not None and user.accepts_token(claims.issued_at, claims.generation),
        )
        assert user is not None
        return user

    async def _verified(self, token: str | None) -> tuple[TokenClaims, str]:
        if not token:
            raise NotAuthenticated()
        claims = await self._tokens.verify(token)
        return claims, _revocation_key(token, claims)

    async def _decoy(self) -> str:
        if self._decoy_hash is None:
            self._decoy_hash = await self._hasher.hash("decoy password for unknown emails")
        return self._decoy_hash
