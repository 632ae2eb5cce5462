"""LoginThrottle and ThrottlePolicy over the in-memory attempt store, on a fixed clock."""

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from adapters.memory import FixedClock, InMemoryLoginAttemptStore
from application.errors import RetryLater, TooManyAttempts, TooManyFailedLogins
from application.ports import FailedLogins
from application.throttling import LoginThrottle, ThrottlePolicy, account_key

# 20.5 seconds into a minute, so per-minute windows and ceilings are visible.
START = datetime(2025, 6, 1, 12, 0, 20, 500_000, tzinfo=UTC)
KEY = account_key("alice@example.com")
CLIENT = "203.0.113.7"


@dataclass
class Throttled:
    throttle: LoginThrottle
    store: InMemoryLoginAttemptStore
    clock: FixedClock

    def at(self, moment: datetime) -> None:
        self.clock.set(moment)

    def later(self, **delta: float) -> None:
        self.clock.set(self.clock.now() + timedelta(**delta))


def throttled(policy: ThrottlePolicy) -> Throttled:
    store, clock = InMemoryLoginAttemptStore(), FixedClock(START)
    return Throttled(LoginThrottle(store=store, clock=clock, policy=policy), store, clock)


@pytest.fixture
def lockout() -> Throttled:
    return throttled(ThrottlePolicy(max_failed_logins=3, lockout=timedelta(minutes=10)))


@pytest.fixture
def per_client() -> Throttled:
    return throttled(ThrottlePolicy(attempts_per_minute=3))


def test_the_default_policy_is_the_one_the_issue_asks_for() -> None:
    policy = ThrottlePolicy()
    assert policy.max_failed_logins == 5
    assert policy.lockout == timedelta(minutes=15)
    assert policy.attempts_per_minute == 30


# --- failed logins per account ----------------------------------------------------------------


async def failures(throttled: Throttled, key: str = KEY) -> int:
    recorded = throttled.store.failures_of(key)
    return 0 if recorded is None else recorded.count


async def test_an_account_without_failures_is_not_locked(lockout: Throttled) -> None:
    assert lockout.store.failures_of(KEY) is None
    await lockout.throttle.attempt(KEY)
    # Counted up front: until it succeeds, the attempt is a failure.
    assert lockout.store.failures_of(KEY) == FailedLogins(1, START)


async def test_attempts_up_to_the_limit_do_not_lock(lockout: Throttled) -> None:
    for count in range(1, 4):
        await lockout.throttle.attempt(KEY)
        assert await failures(lockout) == count
    with pytest.raises(TooManyFailedLogins):
        await lockout.throttle.attempt(KEY)  # the one past the limit


async def test_past_the_limit_the_account_is_locked_for_the_rest_of_the_window(
    lockout: Throttled,
) -> None:
    await lockout.throttle.attempt(KEY)  # the window starts with the first attempt
    lockout.later(minutes=1)
    await lockout.throttle.attempt(KEY)
    await lockout.throttle.attempt(KEY)

    lockout.later(minutes=1, seconds=0.4)  # 2 min 0.4 s into a 10-minute window
    with pytest.raises(TooManyFailedLogins) as caught:
        await lockout.throttle.attempt(KEY)
    assert caught.value.retry_after_seconds == 480  # 7 min 59.6 s, rounded up
    assert isinstance(caught.value, RetryLater)


async def test_refused_attempts_are_counted_but_do_not_extend_the_lock(
    lockout: Throttled,
) -> None:
    for _ in range(3):
        await lockout.throttle.attempt(KEY)
    for seconds_left in (600, 540, 480):
        with pytest.raises(TooManyFailedLogins) as caught:
            await lockout.throttle.attempt(KEY)
        assert caught.value.retry_after_seconds == seconds_left
        lockout.later(minutes=1)
    assert lockout.store.failures_of(KEY) == FailedLogins(6, START)


async def test_the_lock_reports_at_least_one_second_to_wait(lockout: Throttled) -> None:
    for _ in range(3):
        await lockout.throttle.attempt(KEY)
    lockout.at(START + timedelta(minutes=10) - timedelta(milliseconds=200))
    with pytest.raises(TooManyFailedLogins) as caught:
        await lockout.throttle.attempt(KEY)
    assert caught.value.retry_after_seconds == 1  # 0.2 s, rounded up


async def test_the_lock_lifts_when_the_window_has_passed(lockout: Throttled) -> None:
    for _ in range(3):
        await lockout.throttle.attempt(KEY)
    with pytest.raises(TooManyFailedLogins):
        await lockout.throttle.attempt(KEY)
    lockout.at(START + timedelta(minutes=10))  # the window is over at exactly its end
    await lockout.throttle.attempt(KEY)


async def test_after_the_window_the_count_of_failures_restarts(lockout: Throttled) -> None:
    for _ in range(3):
        await lockout.throttle.attempt(KEY)
    restart = START + timedelta(minutes=10, seconds=1)
    lockout.at(restart)

    await lockout.throttle.attempt(KEY)
    assert lockout.store.failures_of(KEY) == FailedLogins(1, restart)
    await lockout.throttle.attempt(KEY)
    await lockout.throttle.attempt(KEY)
    with pytest.raises(TooManyFailedLogins) as caught:
        await lockout.throttle.attempt(KEY)  # the fourth attempt of the new window
    assert caught.value.retry_after_seconds == 600


async def test_a_success_clears_the_failures(lockout: Throttled) -> None:
    for _ in range(3):
        await lockout.throttle.attempt(KEY)
    await lockout.throttle.succeeded(KEY)
    assert lockout.store.failures_of(KEY) is None
    await lockout.throttle.attempt(KEY)
    assert await failures(lockout) == 1


async def test_after_a_success_the_limit_counts_from_zero(lockout: Throttled) -> None:
    await lockout.throttle.attempt(KEY)
    await lockout.throttle.attempt(KEY)
    await lockout.throttle.succeeded(KEY)
    for _ in range(3):
        await lockout.throttle.attempt(KEY)  # five attempts, but only three since
    with pytest.raises(TooManyFailedLogins):
        await lockout.throttle.attempt(KEY)


async def test_one_locked_account_leaves_the_others_alone(lockout: Throttled) -> None:
    bob = account_key("bob@example.com")
    for _ in range(3):
        await lockout.throttle.attempt(KEY)
    with pytest.raises(TooManyFailedLogins):
        await lockout.throttle.attempt(KEY)
    await lockout.throttle.attempt(bob)
    assert await failures(lockout, bob) == 1
    await lockout.throttle.succeeded(bob)
    with pytest.raises(TooManyFailedLogins):
        await lockout.throttle.attempt(KEY)


@pytest.mark.parametrize(
    "spelling",
    ["alice@example.com", "ALICE@Example.COM", "  alice@example.com\t\n", " Alice@EXAMPLE.com "],
)
def test_account_key_ignores_case_and_surrounding_whitespace(spelling: str) -> None:
    assert account_key(spelling) == account_key("alice@example.com")


def test_account_key_tells_accounts_apart_and_hides_the_address() -> None:
    assert account_key("alice@example.com") != account_key("bob@example.com")
    assert "alice" not in account_key("alice@example.com")


async def test_attempts_under_any_spelling_count_for_one_account(lockout: Throttled) -> None:
    for spelling in ["alice@example.com", "ALICE@example.com", " Alice@Example.com "]:
        await lockout.throttle.attempt(account_key(spelling))
    with pytest.raises(TooManyFailedLogins):
        await lockout.throttle.attempt(account_key("alice@EXAMPLE.com"))


# --- attempts that reach no verdict -------------------------------------------------------------


async def test_abandoning_an_attempt_gives_back_exactly_one_failure(lockout: Throttled) -> None:
    await lockout.throttle.attempt(KEY)
    lockout.later(minutes=1)
    await lockout.throttle.attempt(KEY)
    await lockout.throttle.attempt(KEY)

    await lockout.throttle.abandoned(KEY)

    # One fewer, in the same window.
    assert lockout.store.failures_of(KEY) == FailedLogins(2, START)


async def test_abandoning_the_only_attempt_forgets_the_account(lockout: Throttled) -> None:
    await lockout.throttle.attempt(KEY)

    await lockout.throttle.abandoned(KEY)

    assert lockout.store.failures_of(KEY) is None
    # The next attempt opens a window of its own.
    lockout.later(minutes=2)
    await lockout.throttle.attempt(KEY)
    assert lockout.store.failures_of(KEY) == FailedLogins(1, START + timedelta(minutes=2))


async def test_abandoning_an_attempt_of_an_account_without_failures_changes_nothing(
    lockout: Throttled,
) -> None:
    bob = account_key("bob@example.com")
    await lockout.throttle.attempt(bob)
    await lockout.throttle.abandoned(KEY)
    assert lockout.store.failures_of(KEY) is None
    assert lockout.store.failures_of(bob) == FailedLogins(1, START)


async def test_abandoned_attempts_never_lock_the_account(lockout: Throttled) -> None:
    for _ in range(10):
        await lockout.throttle.attempt(KEY)
        await lockout.throttle.abandoned(KEY)
    for _ in range(3):
        await lockout.throttle.attempt(KEY)
    with pytest.raises(TooManyFailedLogins):
        await lockout.throttle.attempt(KEY)


async def test_a_given_back_attempt_frees_its_place_under_the_limit(lockout: Throttled) -> None:
    for _ in range(3):
        await lockout.throttle.attempt(KEY)
    await lockout.throttle.abandoned(KEY)
    await lockout.throttle.attempt(KEY)  # the third again
    with pytest.raises(TooManyFailedLogins):
        await lockout.throttle.attempt(KEY)


# --- simultaneous attempts ----------------------------------------------------------------------


class YieldingStore(InMemoryLoginAttemptStore):
    """Lets other tasks run before each call, as a store over the network would; each call's
    own step stays atomic."""

    async def failed_logins(self, account_key: str) -> FailedLogins | None:
        await asyncio.sleep(0)
        return await super().failed_logins(account_key)

    async def record_failed_login(
        self, account_key: str, now: datetime, window: timedelta
    ) -> FailedLogins:
        await asyncio.sleep(0)
        return await super().record_failed_login(account_key, now, window)


@pytest.mark.parametrize("store_type", [InMemoryLoginAttemptStore, YieldingStore])
@pytest.mark.parametrize("simultaneous", [3, 4, 20])
async def test_simultaneous_attempts_let_at_most_the_limit_through(
    store_type: type[InMemoryLoginAttemptStore], simultaneous: int
) -> None:
    policy = ThrottlePolicy(max_failed_logins=3, lockout=timedelta(minutes=10))
    store = store_type()
    throttle = LoginThrottle(store=store, clock=FixedClock(START), policy=policy)

    results = await asyncio.gather(
        *(throttle.attempt(KEY) for _ in range(simultaneous)), return_exceptions=True
    )

    let_through = [r for r in results if r is None]
    refused = [r for r in results if isinstance(r, TooManyFailedLogins)]
    assert len(let_through) == min(simultaneous, 3)
    assert len(refused) == simultaneous - len(let_through)
    assert {r.retry_after_seconds for r in refused} <= {600}
    assert store.failures_of(KEY) == FailedLogins(simultaneous, START)


# --- attempts per client address --------------------------------------------------------------


async def test_a_client_may_make_the_allowed_attempts_in_a_minute(per_client: Throttled) -> None:
    for _ in range(3):
        await per_client.throttle.count_attempt(CLIENT)


async def test_past_the_limit_a_client_waits_until_the_end_of_the_minute(
    per_client: Throttled,
) -> None:
    for _ in range(3):
        await per_client.throttle.count_attempt(CLIENT)
    with pytest.raises(TooManyAttempts) as caught:
        await per_client.throttle.count_attempt(CLIENT)
    assert caught.value.retry_after_seconds == 40  # 39.5 s to 12:01:00, rounded up
    assert isinstance(caught.value, RetryLater)

    per_client.at(datetime(2025, 6, 1, 12, 0, 59, 900_000, tzinfo=UTC))
    with pytest.raises(TooManyAttempts) as caught:
        await per_client.throttle.count_attempt(CLIENT)
    assert caught.value.retry_after_seconds == 1


async def test_at_the_start_of_a_minute_the_wait_is_the_whole_minute(
    per_client: Throttled,
) -> None:
    per_client.at(datetime(2025, 6, 1, 12, 5, tzinfo=UTC))
    for _ in range(3):
        await per_client.throttle.count_attempt(CLIENT)
    with pytest.raises(TooManyAttempts) as caught:
        await per_client.throttle.count_attempt(CLIENT)
    assert caught.value.retry_after_seconds == 60


async def test_the_client_limit_resets_in_the_next_minute(per_client: Throttled) -> None:
    for _ in range(3):
        await per_client.throttle.count_attempt(CLIENT)
    with pytest.raises(TooManyAttempts):
        await per_client.throttle.count_attempt(CLIENT)

    per_client.at(datetime(2025, 6, 1, 12, 1, tzinfo=UTC))
    for _ in range(3):
        await per_client.throttle.count_attempt(CLIENT)
    with pytest.raises(TooManyAttempts):
        await per_client.throttle.count_attempt(CLIENT)


async def test_the_limit_is_per_client_address(per_client: Throttled) -> None:
    for _ in range(3):
        await per_client.throttle.count_attempt(CLIENT)
    with pytest.raises(TooManyAttempts):
        await per_client.throttle.count_attempt(CLIENT)
    for _ in range(3):
        await per_client.throttle.count_attempt("198.51.100.9")


async def test_no_client_is_never_limited(per_client: Throttled) -> None:
    for _ in range(50):
        await per_client.throttle.count_attempt(None)
    await per_client.throttle.count_attempt(CLIENT)  # nor counted against anyone


async def test_a_limit_of_zero_turns_the_client_limit_off() -> None:
    unlimited = throttled(ThrottlePolicy(attempts_per_minute=0))
    for _ in range(100):
        await unlimited.throttle.count_attempt(CLIENT)


async def test_client_attempts_and_account_failures_are_counted_apart(
    per_client: Throttled,
) -> None:
    for _ in range(3):
        await per_client.throttle.count_attempt(CLIENT)
    # The client is at its limit, the account has no failures.
    assert per_client.store.failures_of(KEY) is None
    for _ in range(5):
        await per_client.throttle.attempt(KEY)
    with pytest.raises(TooManyFailedLogins):
        await per_client.throttle.attempt(KEY)
    with pytest.raises(TooManyAttempts):
        await per_client.throttle.count_attempt(CLIENT)
    # The next minute frees the client but not the account.
    per_client.at(datetime(2025, 6, 1, 12, 1, tzinfo=UTC))
    await per_client.throttle.count_attempt(CLIENT)
    with pytest.raises(TooManyFailedLogins):
        await per_client.throttle.attempt(KEY)
