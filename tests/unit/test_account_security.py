"""AccountService hardening: login lockout, client limits, password change, logout everywhere,
account deletion and weak passwords, on the in-memory adapters with a fixed clock."""

import asyncio
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
from application.accounts import AccountService, Session
from application.errors import (
    InvalidCredentials,
    RetryLater,
    ServerBusy,
    StorageUnavailable,
    TokenRevoked,
    TooManyAttempts,
    TooManyFailedLogins,
    UserNotFound,
    WrongPassword,
)
from application.tasks import TaskService
from application.throttling import LoginThrottle, ThrottlePolicy, account_key
from domain.errors import ValidationFailed, WeakPassword
from domain.queries import TaskQuery
from domain.users import User

SECRET = "r" * 40
EMAIL = "alice@example.com"
PASSWORD = "correct horse battery"
NEW_PASSWORD = "purple elephant umbrella"
CLIENT = "203.0.113.7"


class CountingHasher(PlainTextHasher):
    """Counts the passwords it checks; `busy` makes it refuse them as an overloaded bcrypt
    pool does, and `yielding` lets other tasks run inside each check, as a real hash does."""

    def __init__(self) -> None:
        self.verifies = 0
        self.busy = False
        self.yielding = False

    async def verify(self, password: str, password_hash: str) -> bool:
        if self.busy:
            raise ServerBusy(retry_after_seconds=1)
        self.verifies += 1
        if self.yielding:
            await asyncio.sleep(0)
        return await super().verify(password, password_hash)


class FlakyUsers(InMemoryUserRepository):
    """Whose lookups by email fail while `down`, as over a lost database connection."""

    down = False

    async def get_by_email(self, email: str) -> User | None:
        if self.down:
            raise StorageUnavailable()
        return await super().get_by_email(email)


@dataclass
class World:
    accounts: AccountService
    tasks: TaskService
    task_repository: InMemoryTaskRepository
    users: FlakyUsers
    attempts: InMemoryLoginAttemptStore
    clock: FixedClock
    hasher: CountingHasher

    def later(self, **delta: float) -> None:
        self.clock.set(self.clock.now() + timedelta(**delta))

    async def log_in(self, password: str = PASSWORD, email: str = EMAIL) -> Session:
        return await self.accounts.log_in(email, password)


def build(policy: ThrottlePolicy | None = None) -> World:
    # PyJWT checks iat and exp against the real time, so the fixed clock starts at the real now.
    clock = FixedClock(datetime.now(UTC).replace(microsecond=0))
    users = FlakyUsers()
    attempts = InMemoryLoginAttemptStore()
    hasher = CountingHasher()
    ids = RandomIds()
    revocations = InMemoryRevocationStore(clock)
    task_repository = InMemoryTaskRepository(users, revocations, clock)
    accounts = AccountService(
        users=users,
        hasher=hasher,
        strength=ZxcvbnStrengthMeter(),
        tokens=JwtTokenService(SECRET),
        revocations=revocations,
        token_subjects=InMemoryTokenSubjects(users, revocations),
        emails=EmailValidatorPolicy(),
        throttle=LoginThrottle(store=attempts, clock=clock, policy=policy or ThrottlePolicy()),
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
    return World(accounts, tasks, task_repository, users, attempts, clock, hasher)


@pytest.fixture
def world() -> World:
    return build()


async def fail_logins(world: World, times: int, email: str = EMAIL) -> None:
    for _ in range(times):
        with pytest.raises(InvalidCredentials):
            await world.accounts.log_in(email, "not the password")


async def failures_of(world: World, email: str = EMAIL) -> int:
    failed = world.attempts.failures_of(account_key(email))
    return 0 if failed is None else failed.count


# --- login lockout ----------------------------------------------------------------------------


async def test_the_sixth_attempt_after_five_failures_is_locked_even_with_the_right_password(
    world: World,
) -> None:
    await world.accounts.register(EMAIL, PASSWORD)
    await fail_logins(world, 5)
    with pytest.raises(TooManyFailedLogins) as caught:
        await world.log_in(PASSWORD)
    assert caught.value.retry_after_seconds == 15 * 60


async def test_four_failures_still_let_the_right_password_in(world: World) -> None:
    user = await world.accounts.register(EMAIL, PASSWORD)
    await fail_logins(world, 4)
    assert (await world.log_in()).user == user


async def test_an_unknown_email_is_locked_exactly_like_a_registered_one(world: World) -> None:
    await world.accounts.register(EMAIL, PASSWORD)
    await fail_logins(world, 5, EMAIL)
    await fail_logins(world, 5, "nobody@example.com")

    with pytest.raises(RetryLater) as registered:
        await world.log_in(PASSWORD)
    with pytest.raises(RetryLater) as unknown:
        await world.accounts.log_in("nobody@example.com", PASSWORD)
    assert type(registered.value) is type(unknown.value) is TooManyFailedLogins
    assert registered.value.retry_after_seconds == unknown.value.retry_after_seconds == 900
    assert str(registered.value) == str(unknown.value)


async def test_a_malformed_email_is_locked_too(world: World) -> None:
    await fail_logins(world, 5, "not-an-email")
    with pytest.raises(TooManyFailedLogins):
        await world.accounts.log_in("not-an-email", PASSWORD)


async def test_the_lock_holds_for_other_spellings_of_the_email(world: World) -> None:
    await world.accounts.register(EMAIL, PASSWORD)
    await fail_logins(world, 5)
    with pytest.raises(TooManyFailedLogins):
        await world.log_in(PASSWORD, email="  ALICE@Example.com ")


async def test_the_lock_holds_for_every_spelling_that_logs_in_to_the_account(
    world: World,
) -> None:
    # email-validator maps a full-width letter or an ideographic full stop in the domain to
    # its ASCII form, so these addresses log in to alice@example.com. Each is a new key of
    # the throttle, though: an attacker gets 5 guesses per spelling, and there are thousands.
    user = await world.accounts.register(EMAIL, PASSWORD)
    # FULLWIDTH LATIN SMALL LETTER E and X, IDEOGRAPHIC FULL STOP
    spellings = ["alice@\uff45xample.com", "alice@example\u3002com", "alice@\uff45\uff58ample.com"]
    for spelling in spellings:
        assert (await world.log_in(PASSWORD, email=spelling)).user == user
    await fail_logins(world, 5)
    for spelling in spellings:
        with pytest.raises(TooManyFailedLogins):
            await world.log_in("another guess", email=spelling)


async def test_the_lock_of_one_email_leaves_others_alone(world: World) -> None:
    await world.accounts.register(EMAIL, PASSWORD)
    bob = await world.accounts.register("bob@example.com", PASSWORD)
    await fail_logins(world, 5)
    assert (await world.log_in(email="bob@example.com")).user == bob


async def test_a_successful_login_clears_the_failures(world: World) -> None:
    user = await world.accounts.register(EMAIL, PASSWORD)
    await fail_logins(world, 4)
    await world.log_in()
    assert await failures_of(world) == 0
    await fail_logins(world, 4)  # 8 failures in the window, but only 4 since the success
    assert (await world.log_in()).user == user


async def test_the_lock_lifts_when_the_clock_passes_the_window(world: World) -> None:
    user = await world.accounts.register(EMAIL, PASSWORD)
    await fail_logins(world, 5)
    world.later(minutes=14, seconds=59)
    with pytest.raises(TooManyFailedLogins) as caught:
        await world.log_in()
    assert caught.value.retry_after_seconds == 1
    world.later(seconds=1)
    assert (await world.log_in()).user == user


async def test_a_locked_login_never_reaches_the_password_check(world: World) -> None:
    await world.accounts.register(EMAIL, PASSWORD)
    await fail_logins(world, 5)
    assert (world.hasher.verifies, await failures_of(world)) == (5, 5)

    with pytest.raises(TooManyFailedLogins) as wrong:
        await world.log_in("not the password")
    world.later(minutes=1)
    with pytest.raises(TooManyFailedLogins) as right:
        await world.log_in(PASSWORD)

    assert world.hasher.verifies == 5  # neither password was checked
    # Each attempt is counted before the check, refused ones too; the window stays where the
    # first failure put it, so counting them does not prolong the lock.
    assert await failures_of(world) == 7
    assert (wrong.value.retry_after_seconds, right.value.retry_after_seconds) == (900, 840)


async def test_a_locked_password_confirmation_never_reaches_the_password_check(
    world: World,
) -> None:
    user, _ = await signed_in(world)
    await fail_logins(world, 5)
    checked = world.hasher.verifies
    with pytest.raises(TooManyFailedLogins):
        await world.accounts.change_password(user, PASSWORD, NEW_PASSWORD)
    with pytest.raises(TooManyFailedLogins):
        await world.accounts.delete_account(user, PASSWORD)
    assert world.hasher.verifies == checked
    assert await world.accounts.find_by_email(EMAIL) == user


async def test_simultaneous_wrong_guesses_check_at_most_five_passwords(world: World) -> None:
    await world.accounts.register(EMAIL, PASSWORD)
    world.hasher.yielding = True  # every guess is in flight before any verdict

    results = await asyncio.gather(
        *(world.log_in(f"guess {i}") for i in range(20)), return_exceptions=True
    )

    assert sum(isinstance(r, InvalidCredentials) for r in results) == 5
    assert sum(isinstance(r, TooManyFailedLogins) for r in results) == 15
    assert world.hasher.verifies == 5
    with pytest.raises(TooManyFailedLogins):
        await world.log_in()


# --- attempts that reach no verdict -------------------------------------------------------------


@pytest.mark.parametrize("earlier_failures", [0, 3])
@pytest.mark.parametrize("email", [EMAIL, "nobody@example.com"])
async def test_a_login_the_busy_hasher_refuses_is_not_a_failure(
    world: World, earlier_failures: int, email: str
) -> None:
    await world.accounts.register(EMAIL, PASSWORD)
    await world.accounts.warm_up()  # the decoy hash of unknown emails
    await fail_logins(world, earlier_failures, email)
    world.hasher.busy = True

    with pytest.raises(ServerBusy):
        await world.accounts.log_in(email, "not the password")

    assert await failures_of(world, email) == earlier_failures
    if earlier_failures == 0:
        assert world.attempts.failures_of(account_key(email)) is None


async def test_busy_logins_never_lock_the_account(world: World) -> None:
    user = await world.accounts.register(EMAIL, PASSWORD)
    await fail_logins(world, 4)
    world.hasher.busy = True
    for _ in range(10):
        with pytest.raises(ServerBusy):
            await world.log_in("not the password")
    world.hasher.busy = False
    assert (await world.log_in()).user == user


async def test_a_login_whose_user_lookup_fails_is_not_a_failure(world: World) -> None:
    user = await world.accounts.register(EMAIL, PASSWORD)
    await fail_logins(world, 2)
    world.users.down = True
    for _ in range(5):
        with pytest.raises(StorageUnavailable):
            await world.log_in("not the password")
    assert await failures_of(world) == 2
    world.users.down = False
    assert (await world.log_in()).user == user


async def test_a_password_change_the_busy_hasher_refuses_is_not_a_failure(
    world: World,
) -> None:
    user, session = await signed_in(world)
    with pytest.raises(WrongPassword):
        await world.accounts.change_password(user, "not the password", NEW_PASSWORD)
    world.hasher.busy = True

    with pytest.raises(ServerBusy):
        await world.accounts.change_password(user, PASSWORD, NEW_PASSWORD)

    assert await failures_of(world) == 1
    world.hasher.busy = False
    assert await world.accounts.authenticate(session.token.token) == user
    assert (await world.log_in()).user.id == user.id  # the password did not change


async def test_an_account_deletion_the_busy_hasher_refuses_is_not_a_failure(
    world: World,
) -> None:
    user, _ = await signed_in(world)
    world.hasher.busy = True

    with pytest.raises(ServerBusy):
        await world.accounts.delete_account(user, "not the password")

    assert world.attempts.failures_of(account_key(EMAIL)) is None
    assert await world.accounts.find_by_email(EMAIL) == user


# --- the per-client limit ---------------------------------------------------------------------


@pytest.fixture
def limited() -> World:
    return build(ThrottlePolicy(attempts_per_minute=3))


async def test_register_is_limited_per_client(limited: World) -> None:
    for i in range(3):
        await limited.accounts.register(f"user{i}@example.com", PASSWORD, CLIENT)
    with pytest.raises(TooManyAttempts) as caught:
        await limited.accounts.register("late@example.com", PASSWORD, CLIENT)
    assert caught.value.retry_after_seconds >= 1
    with pytest.raises(UserNotFound):
        await limited.accounts.find_by_email("late@example.com")


async def test_log_in_is_limited_per_client_even_with_the_right_password(limited: World) -> None:
    await limited.accounts.register(EMAIL, PASSWORD)  # no client: not counted
    for _ in range(3):
        await limited.accounts.log_in(EMAIL, PASSWORD, CLIENT)
    with pytest.raises(TooManyAttempts):
        await limited.accounts.log_in(EMAIL, PASSWORD, CLIENT)


async def test_register_and_log_in_share_the_clients_allowance(limited: World) -> None:
    await limited.accounts.register(EMAIL, PASSWORD, CLIENT)
    await limited.accounts.log_in(EMAIL, PASSWORD, CLIENT)
    with pytest.raises(InvalidCredentials):
        await limited.accounts.log_in(EMAIL, "not the password", CLIENT)
    with pytest.raises(TooManyAttempts):
        await limited.accounts.register("bob@example.com", PASSWORD, CLIENT)


async def test_the_client_limit_spares_other_clients_and_the_command_line(
    limited: World,
) -> None:
    user = await limited.accounts.register(EMAIL, PASSWORD, CLIENT)
    for _ in range(2):
        await limited.accounts.log_in(EMAIL, PASSWORD, CLIENT)
    with pytest.raises(TooManyAttempts):
        await limited.accounts.log_in(EMAIL, PASSWORD, CLIENT)
    assert (await limited.accounts.log_in(EMAIL, PASSWORD, "198.51.100.9")).user == user
    for _ in range(5):
        assert (await limited.accounts.log_in(EMAIL, PASSWORD)).user == user


async def test_the_client_limit_lifts_in_the_next_minute(limited: World) -> None:
    user = await limited.accounts.register(EMAIL, PASSWORD)
    for _ in range(3):
        await limited.accounts.log_in(EMAIL, PASSWORD, CLIENT)
    with pytest.raises(TooManyAttempts) as caught:
        await limited.accounts.log_in(EMAIL, PASSWORD, CLIENT)
    limited.later(seconds=caught.value.retry_after_seconds)
    assert (await limited.accounts.log_in(EMAIL, PASSWORD, CLIENT)).user == user


# --- change_password --------------------------------------------------------------------------


async def signed_in(world: World) -> tuple[User, Session]:
    await world.accounts.register(EMAIL, PASSWORD)
    session = await world.log_in()
    return await world.accounts.authenticate(session.token.token), session


async def test_change_password_refuses_a_wrong_current_password(world: World) -> None:
    user, session = await signed_in(world)
    with pytest.raises(WrongPassword):
        await world.accounts.change_password(user, "not the password", NEW_PASSWORD)
    assert (await world.log_in()).user.id == user.id
    with pytest.raises(InvalidCredentials):
        await world.log_in(NEW_PASSWORD)
    assert await world.accounts.authenticate(session.token.token) == user


async def test_a_wrong_current_password_counts_as_a_failed_login(world: World) -> None:
    user, _ = await signed_in(world)
    with pytest.raises(WrongPassword):
        await world.accounts.change_password(user, "not the password", NEW_PASSWORD)
    assert await failures_of(world) == 1
    await fail_logins(world, 4)
    with pytest.raises(TooManyFailedLogins):
        await world.log_in()


async def test_change_password_is_refused_while_the_email_is_locked(world: World) -> None:
    user, _ = await signed_in(world)
    await fail_logins(world, 5)
    with pytest.raises(TooManyFailedLogins):
        await world.accounts.change_password(user, PASSWORD, NEW_PASSWORD)


@pytest.mark.parametrize(
    ("new_password", "weak"),
    [
        pytest.param("1234567", False, id="too-short"),
        pytest.param("x" * 129, False, id="too-long"),
        pytest.param("password1", True, id="common"),
        pytest.param("alice@example.com2024", True, id="made-of-the-email"),
    ],
)
async def test_change_password_refuses_a_bad_new_password_on_field_new_password(
    world: World, new_password: str, weak: bool
) -> None:
    user, session = await signed_in(world)
    world.later(seconds=1)
    with pytest.raises(ValidationFailed) as caught:
        await world.accounts.change_password(user, PASSWORD, new_password)
    assert [e.field for e in caught.value.errors] == ["new_password"]
    assert isinstance(caught.value, WeakPassword) is weak
    assert all(e.message for e in caught.value.errors)
    assert (await world.log_in()).user.id == user.id
    assert await world.accounts.authenticate(session.token.token) == user


async def test_change_password_returns_a_working_session_and_revokes_older_tokens(
    world: World,
) -> None:
    # All at one instant of the clock: the cut-off does not depend on time at all.
    user, old = await signed_in(world)

    fresh = await world.accounts.change_password(user, PASSWORD, NEW_PASSWORD)

    assert fresh.user.id == user.id
    assert fresh.token.token != old.token.token
    assert (await world.accounts.authenticate(fresh.token.token)).id == user.id
    with pytest.raises(TokenRevoked):
        await world.accounts.authenticate(old.token.token)
    with pytest.raises(TokenRevoked):
        await world.accounts.log_out(old.token.token)


async def test_after_a_change_the_new_password_logs_in_and_the_old_one_does_not(
    world: World,
) -> None:
    user, _ = await signed_in(world)
    world.later(seconds=1)
    await world.accounts.change_password(user, PASSWORD, NEW_PASSWORD)
    assert (await world.log_in(NEW_PASSWORD)).user.id == user.id
    with pytest.raises(InvalidCredentials):
        await world.log_in(PASSWORD)


async def test_the_session_of_a_change_in_mid_second_works(world: World) -> None:
    # Its iat says 12:00:01 for a change at 12:00:01.7, before the cut-off: what lets it in
    # is the generation it carries.
    user, _ = await signed_in(world)
    world.later(seconds=1.7)
    fresh = await world.accounts.change_password(user, PASSWORD, NEW_PASSWORD)
    assert (await world.accounts.authenticate(fresh.token.token)).id == user.id


async def test_after_two_changes_at_one_instant_only_the_last_session_works(
    world: World,
) -> None:
    user, first = await signed_in(world)
    second = await world.accounts.change_password(user, PASSWORD, NEW_PASSWORD)
    third = await world.accounts.change_password(second.user, NEW_PASSWORD, PASSWORD)

    for refused in (first, second):
        with pytest.raises(TokenRevoked):
            await world.accounts.authenticate(refused.token.token)
    assert (await world.accounts.authenticate(third.token.token)).id == user.id


async def test_change_password_of_a_deleted_user_finds_no_user(world: World) -> None:
    user, _ = await signed_in(world)
    await world.accounts.delete(user.id)
    with pytest.raises(UserNotFound):
        await world.accounts.change_password(user, PASSWORD, NEW_PASSWORD)


# --- log_out_everywhere -----------------------------------------------------------------------


async def test_log_out_everywhere_revokes_every_older_token(world: World) -> None:
    # Logged in and out everywhere at one instant of the clock (the same microsecond).
    user, phone = await signed_in(world)
    laptop = await world.log_in()

    await world.accounts.log_out_everywhere(user)

    for session in (phone, laptop):
        with pytest.raises(TokenRevoked):
            await world.accounts.authenticate(session.token.token)


async def test_a_login_at_the_instant_of_log_out_everywhere_but_after_it_works(
    world: World,
) -> None:
    user, _ = await signed_in(world)
    await world.accounts.log_out_everywhere(user)
    later = await world.log_in()
    assert (await world.accounts.authenticate(later.token.token)).id == user.id


async def test_a_token_issued_during_log_out_everywhere_is_refused(world: World) -> None:
    # A login that read the account before the cut-off was stored issues a token of the old
    # generation, whatever its time: refused.
    user, _ = await signed_in(world)
    reading = await world.users.get_by_email(EMAIL)
    assert reading is not None
    await world.accounts.log_out_everywhere(user)
    straggler = JwtTokenService(SECRET).issue(reading, world.clock.now())
    with pytest.raises(TokenRevoked):
        await world.accounts.authenticate(straggler.token)


def minted_elsewhere(user: User, issued_at: float) -> str:
    """A token as the web frontend mints it with the shared secret: whole-second times, no
    generation."""
    return jwt.encode(
        {"sub": str(user.id), "iat": int(issued_at), "exp": int(issued_at) + 3600},
        SECRET,
        algorithm="HS256",
    )


async def test_a_token_minted_elsewhere_is_accepted_only_from_the_second_after_the_cutoff(
    world: World,
) -> None:
    user, _ = await signed_in(world)
    world.later(seconds=0.25)
    cutoff = world.clock.now().timestamp()
    await world.accounts.log_out_everywhere(user)

    # iat says the cut-off's second: minted at .0 (before) or .5 (after), nobody can tell.
    for refused in (cutoff - 1, cutoff):
        with pytest.raises(TokenRevoked):
            await world.accounts.authenticate(minted_elsewhere(user, refused))
    accepted = await world.accounts.authenticate(minted_elsewhere(user, cutoff + 1))
    assert accepted.id == user.id


async def test_a_token_minted_elsewhere_at_a_whole_second_cutoff_is_refused(
    world: World,
) -> None:
    user, _ = await signed_in(world)
    cutoff = world.clock.now().timestamp()  # the fixed clock starts on a whole second
    assert cutoff == int(cutoff)
    await world.accounts.log_out_everywhere(user)
    with pytest.raises(TokenRevoked):
        await world.accounts.authenticate(minted_elsewhere(user, cutoff))
    assert (await world.accounts.authenticate(minted_elsewhere(user, cutoff + 1))).id == user.id


async def test_log_out_everywhere_keeps_the_password(world: World) -> None:
    user, _ = await signed_in(world)
    world.later(seconds=1)
    await world.accounts.log_out_everywhere(user)
    assert (await world.log_in()).user.id == user.id


async def test_log_out_everywhere_does_not_undo_a_password_change_made_meanwhile(
    world: World,
) -> None:
    # Two requests of one person: "log out everywhere" authenticated on one device, then the
    # password is changed on another before the first request stores its cut-off.
    user, _ = await signed_in(world)
    world.later(seconds=1)
    await world.accounts.change_password(user, PASSWORD, NEW_PASSWORD)
    await world.accounts.log_out_everywhere(user)  # the user as the first request read it
    with pytest.raises(InvalidCredentials):
        await world.log_in(PASSWORD)
    assert (await world.log_in(NEW_PASSWORD)).user.id == user.id


async def test_log_out_everywhere_of_a_deleted_user_finds_no_user(world: World) -> None:
    user, _ = await signed_in(world)
    await world.accounts.delete(user.id)
    with pytest.raises(UserNotFound):
        await world.accounts.log_out_everywhere(user)


# --- delete_account ---------------------------------------------------------------------------


async def test_delete_account_with_a_wrong_password_deletes_nothing(world: World) -> None:
    user, session = await signed_in(world)
    task = await world.tasks.create(world.accounts.acting_for(user), title="keep me")
    with pytest.raises(WrongPassword):
        await world.accounts.delete_account(user, "not the password")
    assert await world.accounts.find_by_email(EMAIL) == user
    assert world.task_repository.stored(task.id) == task
    assert await world.accounts.authenticate(session.token.token) == user
    assert await failures_of(world) == 1


async def test_delete_account_deletes_the_user_and_their_tasks(world: World) -> None:
    user, session = await signed_in(world)
    bob = await world.accounts.register("bob@example.com", PASSWORD)
    tasks = [
        await world.tasks.create(world.accounts.acting_for(user), title=f"task {i}")
        for i in range(3)
    ]
    bobs = await world.tasks.create(world.accounts.acting_for(bob), title="bob's")

    await world.accounts.delete_account(user, PASSWORD)

    with pytest.raises(UserNotFound):
        await world.accounts.find_by_email(EMAIL)
    for task in tasks:
        assert world.task_repository.stored(task.id) is None
    assert world.task_repository.stored_of(user.id) == []
    assert (await world.tasks.list(world.accounts.acting_for(bob), TaskQuery())).tasks == [bobs]
    with pytest.raises(UserNotFound):
        await world.accounts.authenticate(session.token.token)
    with pytest.raises(InvalidCredentials):
        await world.log_in()


# --- weak passwords at registration -----------------------------------------------------------


async def test_a_password_made_of_the_email_is_refused_for_that_account_only(
    world: World,
) -> None:
    password = "zbigniew.wojtaszek@example.com2024"
    with pytest.raises(WeakPassword) as caught:
        await world.accounts.register("Zbigniew.Wojtaszek@example.com", password)
    assert [e.field for e in caught.value.errors] == ["password"]
    user = await world.accounts.register("someone.else@example.com", password)
    assert user.email == "someone.else@example.com"


async def test_the_length_rule_is_reported_before_the_strength_rule(world: World) -> None:
    with pytest.raises(ValidationFailed) as caught:
        await world.accounts.register(EMAIL, "1234567")
    assert not isinstance(caught.value, WeakPassword)
    assert [e.field for e in caught.value.errors] == ["password"]


# --- User.accepts_token ----------------------------------------------------------------------

CUTOFF = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)


def user_with(tokens_valid_after: datetime | None, generation: int = 0) -> User:
    return User(
        id=uuid4(),
        email=EMAIL,
        password_hash="plain$x",
        created_at=CUTOFF - timedelta(days=1),
        updated_at=CUTOFF - timedelta(days=1),
        tokens_valid_after=tokens_valid_after,
        token_generation=generation,
    )


def test_a_user_without_a_cutoff_accepts_any_token_of_generation_zero_or_none() -> None:
    user = user_with(None)
    assert user.accepts_token(datetime(2000, 1, 1, tzinfo=UTC), None)
    assert user.accepts_token(CUTOFF, None)
    assert user.accepts_token(CUTOFF, 0)
    assert not user.accepts_token(CUTOFF, 1)


@pytest.mark.parametrize(
    ("issued_at", "generation", "accepted"),
    [
        # todo-api's own tokens: the generation decides, whatever the time says.
        (CUTOFF - timedelta(days=1), 2, True),
        (CUTOFF, 2, True),
        (CUTOFF + timedelta(seconds=1), 1, False),
        (CUTOFF + timedelta(days=1), 0, False),
        (CUTOFF, 3, False),
        # Tokens minted elsewhere: issued strictly after the cut-off.
        (CUTOFF - timedelta(days=1), None, False),
        (CUTOFF - timedelta(microseconds=1), None, False),
        (CUTOFF, None, False),
        (CUTOFF + timedelta(microseconds=1), None, True),
        (CUTOFF + timedelta(seconds=1), None, True),
    ],
)
def test_a_user_accepts_tokens_of_the_current_generation_or_minted_after_the_cutoff(
    issued_at: datetime, generation: int | None, accepted: bool
) -> None:
    assert user_with(CUTOFF, generation=2).accepts_token(issued_at, generation) is accepted
