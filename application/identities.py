"""Accounts of people who sign in through an identity provider (Better Auth): the first valid
token of an identity creates its local account, or links the account that has its email; later
tokens find it. Tasks keep referring to the local account's id, so nothing else changes."""

from contextlib import suppress
from dataclasses import replace

from application.errors import EmailNotVerifiedForLinking, InvalidToken
from application.ports import (
    Clock,
    EmailPolicy,
    ExternalIdentity,
    IdGenerator,
    LinkedIdentities,
    TokenSubject,
    Transactions,
    UserRepository,
)
from domain.errors import EmailAlreadyRegistered, ValidationFailed
from domain.users import User

_LINK_ATTEMPTS = 3


class _LinkedMeanwhile(Exception):
    """Another request linked the identity first: this block's changes are to be undone."""


class AccountLinking:
    def __init__(
        self,
        *,
        users: UserRepository,
        identities: LinkedIdentities,
        transactions: Transactions,
        emails: EmailPolicy,
        clock: Clock,
        ids: IdGenerator,
    ) -> None:
        self._users = users
        self._identities = identities
        self._transactions = transactions
        self._emails = emails
        self._clock = clock
        self._ids = ids

    async def holder(self, identity: ExternalIdentity, token_key: str) -> TokenSubject:
        """The account the identity signs in to, and whether the token was logged out. On an
        identity's first token the account is created, or, when an account has its email
        already, linked: only if the provider says the email is verified, else
        EmailNotVerifiedForLinking. The account's email follows the provider's."""
        email = self._email_of(identity)
        found = await self._identities.find(identity.issuer, identity.subject, token_key)
        for _ in range(_LINK_ATTEMPTS):
            if found.token_revoked or found.user is not None:
                break
            await self._link(identity, email)
            found = await self._identities.find(identity.issuer, identity.subject, token_key)
        if found.token_revoked or found.user is None:
            # No account after every attempt: it was deleted each time between linking and
            # reading it, and the caller answers "User not found".
            return found
        return TokenSubject(await self._with_email(found.user, email), token_revoked=False)

    async def is_linked(self, user: User) -> bool:
        return await self._identities.is_linked(user.id)

    def _email_of(self, identity: ExternalIdentity) -> str:
        try:
            return self._emails.normalize(identity.email)
        except ValidationFailed:
            raise InvalidToken() from None

    async def _link(self, identity: ExternalIdentity, email: str) -> None:
        """Links the identity to a new account, or to the one with its email (unless that one
        was deleted meanwhile, or another request linked the identity first)."""
        now = self._clock.now()
        new = User(
            id=self._ids.new_id(),
            email=email,
            password_hash=None,
            created_at=now,
            updated_at=now,
        )

        # One transaction: the account and its link are created together or not at all.
        # Concurrent first requests meet at the unique email (the second waits for the first
        # to commit, then finds its link) or at the unique identity.
        async def link_once() -> None:
            try:
                account = (await self._users.add(new)).id
            except EmailAlreadyRegistered:
                if await self._identities.account_of(identity.issuer, identity.subject):
                    raise _LinkedMeanwhile() from None
                existing = await self._users.get_by_email(email)
                if existing is None:
                    return
                if not identity.email_verified:
                    raise EmailNotVerifiedForLinking() from None
                account = existing.id
            linked = await self._identities.link(identity.issuer, identity.subject, account)
            if linked != account:
                raise _LinkedMeanwhile()

        with suppress(_LinkedMeanwhile):
            await self._transactions.atomically(link_once)

    async def _with_email(self, user: User, email: str) -> User:
        # An address changed in Better Auth follows here, unless another account has it.
        if user.email == email or not await self._users.change_email(user.id, email):
            return user
        return replace(user, email=email)
