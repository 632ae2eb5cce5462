"""AccountService on the in-memory adapters, with the real token service and email policy."""

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import jwt
import pytest

from adapters.email import EmailValidatorPolicy
from adapters.memory import (
    FixedClock,
    InMemoryIdempotencyStore,
    InMemoryLoginAttemptStore,
    InMemoryRevocationStore,
    InMemoryTaskRepository,
    InMemoryTokenSubjects,
    InMemoryTransactions,
    InMemoryUserRepository,
    PlainTextHasher,
)
from adapters.password_strength import ZxcvbnStrengthMeter
from adapters.system import RandomIds
from adapters.tokens import JwtTokenService
from application.accounts import AccountService
from application.errors import (
    InvalidCredentials,
    InvalidToken,
    NotAuthenticated,
    TokenRevoked,
    UserNotFound,
)
from application.ports import Caller, PasswordHasher
from application.tasks import TaskService
from application.throttling import LoginThrottle, ThrottlePolicy
from domain.errors import EmailAlreadyRegistered, ValidationFailed, WeakPassword
from domain.queries import TaskQuery
from domain.tasks import TaskChanges
from domain.users import User

SECRET = "s" * 20 + "e" * 20  # 40 characters, as BETTER_AUTH_SECRET must be at least 32
PASSWORD = "correct horse battery"


class CountingHasher:
    """A real (salted, iterated) hasher that counts its calls and remembers what it made."""

    def __init__(self) -> None:
        self.hash_calls = 0
        self.verify_calls = 0
        self.made: list[str] = []
        self.verified_against: list[str] = []

    async def hash(self, password: str) -> str:
        self.hash_calls += 1
        salt = secrets.token_hex(8)
        digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), 1_000).hex()
        stored = f"pbkdf2${salt}${digest}"
        self.made.append(stored)
        return stored

    async def verify(self, password: str, password_hash: str) -> bool:
        self.verify_calls += 1
        self.verified_against.append(password_hash)
        _, salt, digest = password_hash.split("$")
        candidate = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), 1_000).hex()
        return hmac.compare_digest(candidate, digest)


@dataclass
class World:
    accounts: AccountService
    tasks: TaskService
    task_repository: InMemoryTaskRepository
    clock: FixedClock
    tokens: JwtTokenService
    hasher: PasswordHasher


def now_to_the_second() -> datetime:
    # PyJWT checks exp and iat against the real time, so the fixed clock starts at the real now.
    return datetime.now(UTC).replace(microsecond=0)


def build(hasher: PasswordHasher | None = None) -> World:
    clock = FixedClock(now_to_the_second())
    tokens = JwtTokenService(SECRET)
    hasher = hasher or PlainTextHasher()
    ids = RandomIds()
    users = InMemoryUserRepository()
    revocations = InMemoryRevocationStore(clock)
    task_repository = InMemoryTaskRepository(users, revocations, clock)
    accounts = AccountService(
        users=users,
        hasher=hasher,
        strength=ZxcvbnStrengthMeter(),
        tokens=tokens,
        revocations=revocations,
        token_subjects=InMemoryTokenSubjects(users, revocations),
        emails=EmailValidatorPolicy(),
        throttle=LoginThrottle(
            store=InMemoryLoginAttemptStore(), clock=clock, policy=ThrottlePolicy()
        ),
        clock=clock,
        ids=ids,
    )
    idempotency = InMemoryIdempotencyStore()
    tasks = TaskService(
        idempotency=idempotency,
        tasks=task_repository,
        transactions=InMemoryTransactions(task_repository, idempotency),
        clock=clock,
        ids=ids,
    )
    return World(accounts, tasks, task_repository, clock, tokens, hasher)


@pytest.fixture
def world() -> World:
    return build()


def foreign_token(sub: str, *, iat: datetime | None = None, **extra: object) -> str:
    """A token minted elsewhere (say, by the frontend) with the shared secret and no jti."""
    issued = iat or now_to_the_second()
    claims = {"sub": sub, "iat": issued, "exp": issued + timedelta(hours=1), **extra}
    return jwt.encode(claims, SECRET, algorithm="HS256")


# --- register ---------------------------------------------------------------------------------


async def test_register_stores_a_user_under_the_normalised_email(world: World) -> None:
    user = await world.accounts.register("  Alice@Example.COM ", PASSWORD)
    assert user.email == "alice@example.com"
    assert user.created_at == world.clock.now()
    assert user.updated_at == world.clock.now()
    assert await world.accounts.find_by_email("alice@example.com") == user


async def test_register_keeps_only_a_hash_of_the_password(world: World) -> None:
    user = await world.accounts.register("alice@example.com", PASSWORD)
    assert user.password_hash != PASSWORD
    assert await world.hasher.verify(PASSWORD, user.password_hash)


async def test_register_gives_each_user_a_distinct_id(world: World) -> None:
    alice = await world.accounts.register("alice@example.com", PASSWORD)
    bob = await world.accounts.register("bob@example.com", PASSWORD)
    assert alice.id != bob.id


@pytest.mark.parametrize("again", ["alice@example.com", "ALICE@EXAMPLE.COM", " Alice@example.com"])
async def test_register_refuses_an_email_taken_in_any_case(world: World, again: str) -> None:
    first = await world.accounts.register("Alice@Example.com", PASSWORD)
    with pytest.raises(EmailAlreadyRegistered):
        await world.accounts.register(again, "another password")
    assert await world.accounts.find_by_email("alice@example.com") == first


@pytest.mark.parametrize(
    ("email", "password", "field"),
    [
        ("not-an-email", PASSWORD, "email"),
        ("a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 60 + ".com", PASSWORD, "email"),
        ("ali\x00ce@example.com", PASSWORD, "email"),
        ("alice@example.com", "1234567", "password"),
        ("alice@example.com", "x" * 129, "password"),
        ("alice@example.com", "pass\x00word", "password"),
    ],
)
async def test_register_refuses_weak_input_naming_the_field(
    world: World, email: str, password: str, field: str
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        await world.accounts.register(email, password)
    assert {e.field for e in caught.value.errors} == {field}
    with pytest.raises(UserNotFound):
        await world.accounts.find_by_email("alice@example.com")


STRONG_8 = "Tq7#mZ2x"
STRONG_128 = (
    "Съешь же ещё этих мягких французских булок, да выпей чаю! 敏捷的棕色狐狸跳过了懒狗。🦊🐕 "
    "Ξεσκεπάζω την ψυχοφθόρα βδελυγμία ☕ Łódź, Zürich, Åre."
)


@pytest.mark.parametrize(
    ("password", "length"),
    [pytest.param(STRONG_8, 8, id="8"), pytest.param(STRONG_128, 128, id="128-any-script")],
)
async def test_register_accepts_passwords_at_the_length_limits(
    world: World, password: str, length: int
) -> None:
    assert len(password) == length
    user = await world.accounts.register("alice@example.com", password)
    session = await world.accounts.log_in("alice@example.com", password)
    assert session.user == user


@pytest.mark.parametrize("password", ["12345678", "password1"])
async def test_register_refuses_a_common_password_with_zxcvbns_advice(
    world: World, password: str
) -> None:
    with pytest.raises(WeakPassword) as caught:
        await world.accounts.register("alice@example.com", password)
    assert isinstance(caught.value, ValidationFailed)  # a 422 like every other broken rule
    [error] = caught.value.errors
    assert error.field == "password"
    advice = await ZxcvbnStrengthMeter().weakness(password, ["alice@example.com"])
    assert advice
    assert error.message == advice
    assert "common password" in error.message
    with pytest.raises(UserNotFound):
        await world.accounts.find_by_email("alice@example.com")


# --- log_in -----------------------------------------------------------------------------------


async def test_log_in_returns_a_24_hour_token_for_the_user(world: World) -> None:
    user = await world.accounts.register("alice@example.com", PASSWORD)
    session = await world.accounts.log_in("alice@example.com", PASSWORD)
    assert session.user == user
    assert session.token.expires_in_seconds == 86_400
    claims = world.tokens.decode(session.token.token)
    assert claims.subject == str(user.id)
    assert claims.issued_at == world.clock.now()
    assert claims.expires_at == world.clock.now() + timedelta(hours=24)


async def test_log_in_accepts_the_email_in_any_case_and_padding(world: World) -> None:
    user = await world.accounts.register("alice@example.com", PASSWORD)
    assert (await world.accounts.log_in("  ALICE@example.COM ", PASSWORD)).user == user


async def test_log_in_with_a_wrong_password_is_refused(world: World) -> None:
    await world.accounts.register("alice@example.com", PASSWORD)
    with pytest.raises(InvalidCredentials):
        await world.accounts.log_in("alice@example.com", PASSWORD + "!")


@pytest.mark.parametrize("email", ["nobody@example.com", "not-an-email", "", "x" * 300])
async def test_log_in_with_an_unknown_or_malformed_email_is_refused_alike(
    world: World, email: str
) -> None:
    await world.accounts.register("alice@example.com", PASSWORD)
    with pytest.raises(InvalidCredentials):
        await world.accounts.log_in(email, PASSWORD)


async def test_wrong_password_verifies_once_against_the_users_hash() -> None:
    hasher = CountingHasher()
    world = build(hasher)
    user = await world.accounts.register("alice@example.com", PASSWORD)
    with pytest.raises(InvalidCredentials):
        await world.accounts.log_in("alice@example.com", "wrong password")
    assert hasher.verify_calls == 1
    assert hasher.verified_against == [user.password_hash]


@pytest.mark.parametrize("email", ["nobody@example.com", "not-an-email"])
async def test_unknown_email_still_pays_for_one_real_verification(email: str) -> None:
    hasher = CountingHasher()
    world = build(hasher)
    await world.accounts.register("alice@example.com", PASSWORD)
    hashes_of_users = list(hasher.made)
    with pytest.raises(InvalidCredentials):
        await world.accounts.log_in(email, PASSWORD)
    assert hasher.verify_calls == 1
    # It verified against a genuine hash the hasher made (the decoy), not a user's hash.
    [decoy] = hasher.verified_against
    assert decoy in hasher.made
    assert decoy not in hashes_of_users


async def test_the_decoy_hash_is_made_once_and_reused() -> None:
    hasher = CountingHasher()
    world = build(hasher)
    await world.accounts.warm_up()
    assert hasher.hash_calls == 1
    for _ in range(3):
        with pytest.raises(InvalidCredentials):
            await world.accounts.log_in("nobody@example.com", PASSWORD)
    assert hasher.hash_calls == 1
    assert hasher.verify_calls == 3


# --- authenticate -----------------------------------------------------------------------------


async def test_authenticate_returns_the_user_of_a_fresh_token(world: World) -> None:
    user = await world.accounts.register("alice@example.com", PASSWORD)
    session = await world.accounts.log_in("alice@example.com", PASSWORD)
    assert await world.accounts.authenticate(session.token.token) == user


@pytest.mark.parametrize("token", [None, ""])
async def test_authenticate_without_a_token_is_not_authenticated(
    world: World, token: str | None
) -> None:
    with pytest.raises(NotAuthenticated):
        await world.accounts.authenticate(token)


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "Bearer x", "é"])
async def test_authenticate_with_garbage_is_an_invalid_token(world: World, token: str) -> None:
    with pytest.raises(InvalidToken):
        await world.accounts.authenticate(token)


async def test_a_token_whose_subject_is_not_a_user_id_is_invalid(world: World) -> None:
    with pytest.raises(InvalidToken):
        await world.accounts.authenticate(foreign_token("alice@example.com"))


async def test_a_token_for_a_user_that_never_existed_finds_no_user(world: World) -> None:
    with pytest.raises(UserNotFound):
        await world.accounts.authenticate(foreign_token(str(uuid4())))


async def test_a_token_of_a_deleted_user_finds_no_user(world: World) -> None:
    user = await world.accounts.register("alice@example.com", PASSWORD)
    session = await world.accounts.log_in("alice@example.com", PASSWORD)
    await world.accounts.delete(user.id)
    with pytest.raises(UserNotFound):
        await world.accounts.authenticate(session.token.token)


async def test_a_logged_out_token_is_revoked(world: World) -> None:
    await world.accounts.register("alice@example.com", PASSWORD)
    session = await world.accounts.log_in("alice@example.com", PASSWORD)
    await world.accounts.log_out(session.token.token)
    with pytest.raises(TokenRevoked):
        await world.accounts.authenticate(session.token.token)
    with pytest.raises(TokenRevoked):
        await world.accounts.log_out(session.token.token)


async def test_logging_out_one_token_leaves_the_users_other_tokens_valid(world: World) -> None:
    user = await world.accounts.register("alice@example.com", PASSWORD)
    phone = await world.accounts.log_in("alice@example.com", PASSWORD)
    laptop = await world.accounts.log_in("alice@example.com", PASSWORD)  # same second, other jti
    assert phone.token.token != laptop.token.token
    await world.accounts.log_out(phone.token.token)
    assert await world.accounts.authenticate(laptop.token.token) == user


async def test_a_token_without_jti_is_accepted_and_can_be_revoked(world: World) -> None:
    user = await world.accounts.register("alice@example.com", PASSWORD)
    issued = now_to_the_second()
    token = foreign_token(str(user.id), iat=issued)
    other = foreign_token(str(user.id), iat=issued - timedelta(seconds=1))
    assert "jti" not in jwt.decode(token, SECRET, algorithms=["HS256"])
    assert await world.accounts.authenticate(token) == user

    await world.accounts.log_out(token)

    with pytest.raises(TokenRevoked):
        await world.accounts.authenticate(token)
    # Revoking one jti-less token must not revoke every jti-less token of the user.
    assert await world.accounts.authenticate(other) == user


async def test_a_deleted_users_token_cannot_log_out(world: World) -> None:
    user = await world.accounts.register("alice@example.com", PASSWORD)
    session = await world.accounts.log_in("alice@example.com", PASSWORD)
    await world.accounts.delete(user.id)
    with pytest.raises(UserNotFound):
        await world.accounts.log_out(session.token.token)


@pytest.mark.parametrize("token", [None, ""])
async def test_log_out_without_a_token_is_not_authenticated(
    world: World, token: str | None
) -> None:
    with pytest.raises(NotAuthenticated):
        await world.accounts.log_out(token)


async def test_log_out_of_garbage_is_an_invalid_token(world: World) -> None:
    with pytest.raises(InvalidToken):
        await world.accounts.log_out("garbage")


# --- the caller of a task request --------------------------------------------------------------


async def test_the_caller_of_a_token_is_what_the_token_says(world: World) -> None:
    user = await world.accounts.register("alice@example.com", PASSWORD)
    session = await world.accounts.log_in("alice@example.com", PASSWORD)
    claims = jwt.decode(session.token.token, SECRET, algorithms=["HS256"])

    caller = await world.accounts.caller(session.token.token)

    assert caller == Caller(
        user.id, claims["jti"], datetime.fromtimestamp(claims["iat"], UTC), user.token_generation
    )
    page = await world.tasks.list(caller, TaskQuery())
    assert (list(page.tasks), page.total) == ([], 0)


async def test_the_caller_of_a_token_minted_elsewhere_has_no_generation(world: World) -> None:
    user = await world.accounts.register("alice@example.com", PASSWORD)
    issued = now_to_the_second()
    token = foreign_token(str(user.id), iat=issued)

    caller = await world.accounts.caller(token)

    assert (caller.user_id, caller.issued_at, caller.generation) == (user.id, issued, None)
    assert caller.token_key is not None and caller.token_key.startswith("sha256:")


@pytest.mark.parametrize(
    ("token", "error"),
    [
        (None, NotAuthenticated),
        ("", NotAuthenticated),
        ("garbage", InvalidToken),
        (foreign_token("alice@example.com"), InvalidToken),  # a subject that is not a user id
    ],
)
async def test_a_caller_needs_a_genuine_token_naming_a_user_id(
    world: World, token: str | None, error: type[Exception]
) -> None:
    with pytest.raises(error):
        await world.accounts.caller(token)


async def refused_by_logout(world: World, user: User, token: str) -> type[Exception]:
    await world.accounts.log_out(token)
    return TokenRevoked


async def refused_by_logout_everywhere(world: World, user: User, token: str) -> type[Exception]:
    await world.accounts.log_out_everywhere(user)
    return TokenRevoked


async def refused_by_password_change(world: World, user: User, token: str) -> type[Exception]:
    await world.accounts.change_password(user, PASSWORD, "a different horse battery staple")
    return TokenRevoked


async def refused_by_deletion(world: World, user: User, token: str) -> type[Exception]:
    await world.accounts.delete(user.id)
    return UserNotFound


@pytest.mark.parametrize(
    "refuse",
    [
        refused_by_logout,
        refused_by_logout_everywhere,
        refused_by_password_change,
        refused_by_deletion,
    ],
)
async def test_a_caller_made_before_a_refusal_gets_no_task_work_done_after_it(
    world: World, refuse: Callable[[World, User, str], Awaitable[type[Exception]]]
) -> None:
    # The caller is made from the token alone: the refusal, however late, is seen by the work.
    user = await world.accounts.register("alice@example.com", PASSWORD)
    session = await world.accounts.log_in("alice@example.com", PASSWORD)
    caller = await world.accounts.caller(session.token.token)
    task = await world.tasks.create(caller, title="Stored")

    error = await refuse(world, user, session.token.token)

    uses = [
        world.tasks.list(caller, TaskQuery()),
        world.tasks.create(caller, title="Not stored"),
        world.tasks.create(caller, title="Not stored", idempotency_key="k-1"),
        world.tasks.get(caller, task.id),
        world.tasks.update(caller, task.id, TaskChanges(title="Not changed")),
        world.tasks.delete(caller, task.id),
    ]
    for use in uses:
        with pytest.raises(error):
            await use
    stored = world.task_repository.stored_of(user.id)
    assert stored == ([] if error is UserNotFound else [task])


async def test_a_caller_acting_for_a_user_is_refused_once_they_are_cut_off(world: World) -> None:
    user = await world.accounts.register("alice@example.com", PASSWORD)
    caller = world.accounts.acting_for(user)
    await world.tasks.create(caller, title="Made from the command line")

    await world.accounts.log_out_everywhere(user)

    with pytest.raises(TokenRevoked):
        await world.tasks.list(caller, TaskQuery())


# --- find_by_email and delete -----------------------------------------------------------------


async def test_find_by_email_normalises_the_address(world: World) -> None:
    user = await world.accounts.register("alice@example.com", PASSWORD)
    assert await world.accounts.find_by_email(" ALICE@Example.com ") == user


async def test_find_by_email_of_an_unknown_address_finds_no_user(world: World) -> None:
    with pytest.raises(UserNotFound):
        await world.accounts.find_by_email("nobody@example.com")


async def test_delete_removes_the_user_and_cascades_to_their_tasks_only(world: World) -> None:
    alice = await world.accounts.register("alice@example.com", PASSWORD)
    bob = await world.accounts.register("bob@example.com", PASSWORD)
    alices = [
        await world.tasks.create(world.accounts.acting_for(alice), title=f"alice {i}")
        for i in range(3)
    ]
    bobs = await world.tasks.create(world.accounts.acting_for(bob), title="bob's")

    await world.accounts.delete(alice.id)

    with pytest.raises(UserNotFound):
        await world.accounts.find_by_email("alice@example.com")
    for task in alices:
        assert world.task_repository.stored(task.id) is None
    assert world.task_repository.stored_of(alice.id) == []
    assert (await world.tasks.list(world.accounts.acting_for(bob), TaskQuery())).tasks == [bobs]
    assert await world.accounts.find_by_email("bob@example.com") == bob


async def test_delete_of_an_unknown_user_finds_no_user(world: World) -> None:
    with pytest.raises(UserNotFound):
        await world.accounts.delete(uuid4())


async def test_a_deleted_users_email_can_be_registered_again(world: World) -> None:
    old = await world.accounts.register("alice@example.com", PASSWORD)
    await world.accounts.delete(old.id)
    new = await world.accounts.register("alice@example.com", "a new password")
    assert new.id != old.id
    assert (await world.accounts.log_in("alice@example.com", "a new password")).user == new
    with pytest.raises(InvalidCredentials):
        await world.accounts.log_in("alice@example.com", PASSWORD)
