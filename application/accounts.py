"""Use cases of accounts: register, log in, log out, and who is calling."""

import hashlib
from dataclasses import dataclass
from uuid import UUID

from application.errors import (
    InvalidCredentials,
    InvalidToken,
    NotAuthenticated,
    TokenRevoked,
    UserNotFound,
)
from application.ports import (
    Clock,
    EmailPolicy,
    IdGenerator,
    IssuedToken,
    PasswordHasher,
    RevocationStore,
    TokenClaims,
    TokenService,
    UserRepository,
)
from domain.errors import EmailAlreadyRegistered, ValidationFailed
from domain.users import User, password_problems


@dataclass(frozen=True, slots=True)
class Session:
    token: IssuedToken
    user: User


def _revocation_key(token: str, claims: TokenClaims) -> str:
    # Tokens minted by the frontend may lack a jti; the token's digest identifies them instead.
    return claims.token_id or "sha256:" + hashlib.sha256(token.encode()).hexdigest()


class AccountService:
    def __init__(
        self,
        *,
        users: UserRepository,
        hasher: PasswordHasher,
        tokens: TokenService,
        revocations: RevocationStore,
        emails: EmailPolicy,
        clock: Clock,
        ids: IdGenerator,
    ) -> None:
        self._users = users
        self._hasher = hasher
        self._tokens = tokens
        self._revocations = revocations
        self._emails = emails
        self._clock = clock
        self._ids = ids
        self._decoy_hash: str | None = None

    async def register(self, email: str, password: str) -> User:
        """Creates an account. Raises ValidationFailed or EmailAlreadyRegistered."""
        problems = password_problems(password)
        try:
            email = self._emails.normalize(email)
        except ValidationFailed as invalid_email:
            problems = invalid_email.errors + problems
        if problems:
            raise ValidationFailed(problems)
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

    async def log_in(self, email: str, password: str) -> Session:
        """Unknown email and wrong password fail alike, after the same amount of hashing work."""
        try:
            email = self._emails.normalize(email)
        except ValidationFailed:
            email = ""
        user = await self._users.get_by_email(email) if email else None
        if user is None:
            await self._hasher.verify(password, await self._decoy())
            raise InvalidCredentials()
        if not await self._hasher.verify(password, user.password_hash):
            raise InvalidCredentials()
        return Session(token=self._tokens.issue(user.id, self._clock.now()), user=user)

    async def authenticate(self, token: str | None) -> User:
        """The user a bearer token speaks for, or the reason it is refused."""
        return await self._user_of(await self._valid_claims(token))

    async def log_out(self, token: str | None) -> None:
        """Revokes the token at once, for every process of the service. Only a token that
        would authenticate can log out."""
        claims = await self._valid_claims(token)
        await self._user_of(claims)
        assert token is not None
        await self._revocations.revoke(_revocation_key(token, claims), claims.expires_at)

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

    async def _valid_claims(self, token: str | None) -> TokenClaims:
        if not token:
            raise NotAuthenticated()
        claims = self._tokens.decode(token)
        if await self._revocations.is_revoked(_revocation_key(token, claims)):
            raise TokenRevoked()
        return claims

    async def _user_of(self, claims: TokenClaims) -> User:
        try:
            user_id = UUID(claims.subject)
        except ValueError:
            raise InvalidToken() from None
        user = await self._users.get(user_id)
        if user is None:
            raise UserNotFound()
        return user

    async def _decoy(self) -> str:
        if self._decoy_hash is None:
            self._decoy_hash = await self._hasher.hash("decoy password for unknown emails")
        return self._decoy_hash
