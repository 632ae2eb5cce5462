"""Signing in through Better Auth, on the in-memory adapters: the first token of an identity
creates or links an account, later ones find it; the emailVerified rule; what a Better Auth
account can and cannot do (login, password change, deletion, logout, logout-all)."""

import time
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from adapters.better_auth import BetterAuthTokens, JwksKeys
from adapters.email import EmailValidatorPolicy
from adapters.memory import (
    FixedClock,
    InMemoryLinkedIdentities,
    InMemoryLoginAttemptStore,
    InMemoryRevocationStore,
    InMemoryTokenSubjects,
    InMemoryTransactions,
    InMemoryUserRepository,
    PlainTextHasher,
)
from adapters.password_strength import ZxcvbnStrengthMeter
from adapters.system import RandomIds
from adapters.tokens import JwtTokenService, TokenKinds
from application.accounts import AccountService
from application.errors import (
    EmailNotVerifiedForLinking,
    InvalidCredentials,
    InvalidToken,
    PasswordlessAccount,
    TokenRevoked,
)
from application.identities import AccountLinking
from application.throttling import LoginThrottle, ThrottlePolicy
from domain.users import User
from tests.better_auth.keys import BETTER_AUTH, SUBJECT, FakeJwks, SigningKey, better_auth_claims

SECRET = "l" * 40
PASSWORD = "correct horse battery"
KEY = SigningKey("EdDSA", "key-1")


@dataclass
class World:
    accounts: AccountService
    users: InMemoryUserRepository
    identities: InMemoryLinkedIdentities
    clock: FixedClock

    async def sign_in(self, **claims: object) -> User:
        return await self.accounts.authenticate(token(**claims))


def token(**claims: object) -> str:
    """A token as Better Auth's JWT plugin signs it, for SUBJECT unless told otherwise."""
    return KEY.sign(better_auth_claims(**claims))


@pytest.fixture
def world() -> World:
    # Token times are checked against the real time; the fixed clock starts there.
    clock = FixedClock(datetime.now(UTC).replace(microsecond=0))
    users = InMemoryUserRepository()
    revocations = InMemoryRevocationStore(clock)
    identities = InMemoryLinkedIdentities(users, revocations)
    emails = EmailValidatorPolicy()
    ids = RandomIds()
    accounts = AccountService(
        users=users,
        hasher=PlainTextHasher(),
        strength=ZxcvbnStrengthMeter(),
        tokens=TokenKinds(
            JwtTokenService(SECRET),
            better_auth=BetterAuthTokens(
                JwksKeys(FakeJwks(KEY)), issuer=BETTER_AUTH, audience=BETTER_AUTH
            ),
        ),
        revocations=revocations,
        token_subjects=InMemoryTokenSubjects(users, revocations),
        emails=emails,
        throttle=LoginThrottle(
            store=InMemoryLoginAttemptStore(), clock=clock, policy=ThrottlePolicy()
        ),
        clock=clock,
        ids=ids,
        linking=AccountLinking(
            users=users,
            identities=identities,
            transactions=InMemoryTransactions(users, identities),
            emails=emails,
            clock=clock,
            ids=ids,
        ),
    )
    return World(accounts, users, identities, clock)


async def test_the_first_token_creates_an_account_without_a_password(world: World) -> None:
    user = await world.sign_in()

    assert user.email == "ada@example.com"
    assert user.password_hash is None
    assert user.created_at == world.clock.now()
    assert await world.identities.account_of(BETTER_AUTH, SUBJECT) == user.id
    assert await world.accounts.sign_in_method(user) == "better-auth"


async def test_later_tokens_find_the_same_account(world: World) -> None:
    first = await world.sign_in()
    assert await world.sign_in() == first
    assert await world.users.get_by_email("ada@example.com") == first


async def test_the_email_is_stored_normalised_and_follows_better_auth(world: World) -> None:
    first = await world.sign_in(email="  Ada@Example.COM")
    assert first.email == "ada@example.com"

    moved = await world.sign_in(email="ada.lovelace@example.com")

    assert moved.id == first.id
    assert moved.email == "ada.lovelace@example.com"
    stored = await world.users.get(first.id)
    assert stored is not None
    assert stored.email == "ada.lovelace@example.com"


async def test_an_email_another_account_has_is_not_taken_from_it(world: World) -> None:
    first = await world.sign_in()
    await world.accounts.register("grace@example.com", PASSWORD)

    same = await world.sign_in(email="grace@example.com")

    assert (same.id, same.email) == (first.id, "ada@example.com")
    grace = await world.users.get_by_email("grace@example.com")
    assert grace is not None
    assert grace.id != first.id


async def test_a_token_with_an_email_that_is_no_address_is_invalid(world: World) -> None:
    with pytest.raises(InvalidToken):
        await world.sign_in(email="not an address")


async def test_a_verified_email_links_the_existing_password_account(world: World) -> None:
    registered = await world.accounts.register("ada@example.com", PASSWORD)

    linked = await world.sign_in(emailVerified=True)

    assert linked.id == registered.id
    assert linked.password_hash == registered.password_hash
    assert await world.accounts.sign_in_method(linked) == "better-auth"
    # It can still log in with its password.
    assert (await world.accounts.log_in("ada@example.com", PASSWORD)).user.id == registered.id


async def test_an_unverified_email_never_opens_an_existing_account(world: World) -> None:
    registered = await world.accounts.register("ada@example.com", PASSWORD)

    with pytest.raises(EmailNotVerifiedForLinking):
        await world.sign_in(emailVerified=False)
    with pytest.raises(EmailNotVerifiedForLinking):
        await world.sign_in(emailVerified=None)

    assert await world.identities.account_of(BETTER_AUTH, SUBJECT) is None
    assert await world.accounts.sign_in_method(registered) == "password"
    # Once Better Auth says the address is verified, the account is linked.
    assert (await world.sign_in(emailVerified=True)).id == registered.id


async def test_another_identity_with_a_verified_email_joins_the_account(world: World) -> None:
    first = await world.sign_in()
    second = await world.sign_in(sub="another-better-auth-user", emailVerified=True)
    assert second.id == first.id


async def test_an_account_without_a_password_cannot_log_in_with_one(world: World) -> None:
    await world.sign_in()
    for password in (PASSWORD, "", "anything at all"):
        with pytest.raises(InvalidCredentials):
            await world.accounts.log_in("ada@example.com", password)


async def test_an_account_without_a_password_has_none_to_change(world: World) -> None:
    user = await world.sign_in()
    with pytest.raises(PasswordlessAccount):
        await world.accounts.change_password(user, PASSWORD, "purple elephant umbrella")


async def test_an_account_without_a_password_is_deleted_without_one(world: World) -> None:
    user = await world.sign_in()

    await world.accounts.delete_account(user, None)

    assert await world.users.get(user.id) is None
    assert await world.identities.account_of(BETTER_AUTH, SUBJECT) is None
    # The identity's next token starts afresh, with a new, empty account.
    again = await world.sign_in()
    assert again.id != user.id


async def test_logout_revokes_a_better_auth_token_by_its_digest(world: World) -> None:
    signed = token()
    await world.accounts.log_out(signed)
    with pytest.raises(TokenRevoked):
        await world.accounts.authenticate(signed)
    # Another token of the same person still works.
    assert (await world.sign_in(iat=int(time.time()) - 1)).email == "ada@example.com"


async def test_logout_all_refuses_better_auth_tokens_issued_before_it(world: World) -> None:
    now = int(world.clock.now().timestamp())
    user = await world.sign_in(iat=now - 5)
    await world.accounts.log_out_everywhere(user)

    for issued in (now - 5, now):
        with pytest.raises(TokenRevoked):
            await world.sign_in(iat=issued)
    assert (await world.sign_in(iat=now + 1)).id == user.id
