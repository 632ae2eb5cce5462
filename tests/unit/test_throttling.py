"""LoginThrottle and ThrottlePolicy over the in-memory attempt store, on a fixed clock."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from adapters.memory import FixedClock, InMemoryLoginAttemptStore
from application.errors import RetryLater, TooManyAttempts, TooManyFailedLogins
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


async def test_an_account_without_failures_is_not_locked(lockout: Throttled) -> None:
    await lockout.throttle.ensure_not_locked(KEY)
    assert await lockout.store.failed_logins(KEY) is None


async def test_failures_below_the_limit_do_not_lock(lockout: Throttled) -> None:
    for _ in range(2):
        await lockout.throttle.failed(KEY)
        await lockout.throttle.ensure_not_locked(KEY)
    failed = await lockout.store.failed_logins(KEY)
    assert failed is not None
    assert failed.count == 2


async def test_the_limit_of_failures_locks_the_account_for_the_rest_of_the_window(
    lockout: Throttled,
) -> None:
    await lockout.throttle.failed(KEY)  # the window starts with the first failure
    lockout.later(minutes=1)
    await lockout.throttle.failed(KEY)
    await lockout.throttle.failed(KEY)

    lockout.later(minutes=1, seconds=0.4)  # 2 min 0.4 s into a 10-minute window
    with pytest.raises(TooManyFailedLogins) as caught:
        await lockout.throttle.ensure_not_locked(KEY)
    assert caught.value.retry_after_seconds == 480  # 7 min 59.6 s, rounded up
    assert isinstance(caught.value, RetryLater)


async def test_the_lock_reports_at_least_one_second_to_wait(lockout: Throttled) -> None:
    for _ in range(3):
        await lockout.throttle.failed(KEY)
    lockout.at(START + timedelta(minutes=10) - timedelta(milliseconds=200))
    with pytest.raises(TooManyFailedLogins) as caught:
        await lockout.throttle.ensure_not_locked(KEY)
    assert caught.value.retry_after_seconds == 1


async def test_the_lock_lifts_when_the_window_has_passed(lockout: Throttled) -> None:
    for _ in range(3):
        await lockout.throttle.failed(KEY)
    lockout.at(START + timedelta(minutes=10))
    await lockout.throttle.ensure_not_locked(KEY)


async def test_after_the_window_the_count_of_failures_restarts(lockout: Throttled) -> None:
    for _ in range(3):
        await lockout.throttle.failed(KEY)
    restart = START + timedelta(minutes=10, seconds=1)
    lockout.at(restart)

    await lockout.throttle.failed(KEY)
    failed = await lockout.store.failed_logins(KEY)
    assert failed is not None
    assert (failed.count, failed.window_started_at) == (1, restart)
    await lockout.throttle.ensure_not_locked(KEY)
    await lockout.throttle.failed(KEY)
    await lockout.throttle.ensure_not_locked(KEY)
    await lockout.throttle.failed(KEY)  # the third failure of the new window locks again
    with pytest.raises(TooManyFailedLogins) as caught:
        await lockout.throttle.ensure_not_locked(KEY)
    assert caught.value.retry_after_seconds == 600


async def test_a_success_clears_the_failures(lockout: Throttled) -> None:
    for _ in range(3):
        await lockout.throttle.failed(KEY)
    await lockout.throttle.succeeded(KEY)
    assert await lockout.store.failed_logins(KEY) is None
    await lockout.throttle.ensure_not_locked(KEY)


async def test_after_a_success_the_limit_counts_from_zero(lockout: Throttled) -> None:
    await lockout.throttle.failed(KEY)
    await lockout.throttle.failed(KEY)
    await lockout.throttle.succeeded(KEY)
    await lockout.throttle.failed(KEY)
    await lockout.throttle.failed(KEY)
    await lockout.throttle.ensure_not_locked(KEY)  # four failures, but only two since
    await lockout.throttle.failed(KEY)
    with pytest.raises(TooManyFailedLogins):
        await lockout.throttle.ensure_not_locked(KEY)


async def test_one_locked_account_leaves_the_others_alone(lockout: Throttled) -> None:
    for _ in range(3):
        await lockout.throttle.failed(KEY)
    await lockout.throttle.ensure_not_locked(account_key("bob@example.com"))
    with pytest.raises(TooManyFailedLogins):
        await lockout.throttle.ensure_not_locked(KEY)


@pytest.mark.parametrize(
    "spelling",
    ["alice@example.com", "ALICE@Example.COM", "  alice@example.com\t\n", " Alice@EXAMPLE.com "],
)
def test_account_key_ignores_case_and_surrounding_whitespace(spelling: str) -> None:
    assert account_key(spelling) == account_key("alice@example.com")


def test_account_key_tells_accounts_apart_and_hides_the_address() -> None:
    assert account_key("alice@example.com") != account_key("bob@example.com")
    assert "alice" not in account_key("alice@example.com")


async def test_failures_under_any_spelling_count_for_one_account(lockout: Throttled) -> None:
    for spelling in ["alice@example.com", "ALICE@example.com", " Alice@Example.com "]:
        await lockout.throttle.failed(account_key(spelling))
    with pytest.raises(TooManyFailedLogins):
        await lockout.throttle.ensure_not_locked(account_key("alice@EXAMPLE.com"))


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
    await per_client.throttle.ensure_not_locked(KEY)
    for _ in range(5):
        await per_client.throttle.failed(KEY)
    with pytest.raises(TooManyFailedLogins):
        await per_client.throttle.ensure_not_locked(KEY)
    per_client.at(datetime(2025, 6, 1, 12, 1, tzinfo=UTC))
    await per_client.throttle.count_attempt(CLIENT)
