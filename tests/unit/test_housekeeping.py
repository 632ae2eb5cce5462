"""Housekeeping over the in-memory stores: what has expired goes, what can still change an
answer stays, and the throttle works as before across a purge."""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from adapters.memory import (
    FixedClock,
    InMemoryIdempotencyStore,
    InMemoryLoginAttemptStore,
    InMemoryRevocationStore,
)
from application.errors import TooManyFailedLogins
from application.housekeeping import Housekeeping, Purged
from application.tasks import IDEMPOTENCY_WINDOW
from application.throttling import LoginThrottle, ThrottlePolicy, account_key

# 20.5 seconds into a minute, so that per-minute windows are visible.
NOW = datetime(2025, 6, 1, 12, 0, 20, 500_000, tzinfo=UTC)
MINUTE_NOW = NOW.replace(second=0, microsecond=0)
LOCKOUT = timedelta(minutes=10)
LEEWAY = timedelta(seconds=30)
OWNER = uuid.uuid4()
TICK = timedelta(microseconds=1)


@dataclass
class World:
    idempotency: InMemoryIdempotencyStore
    revocations: InMemoryRevocationStore
    logins: InMemoryLoginAttemptStore
    policy: ThrottlePolicy
    housekeeping: Housekeeping

    async def key_is_remembered(self, key: str) -> bool:
        # Within a year's ttl a remembered key is always an earlier creation.
        earlier = await self.idempotency.claim(OWNER, key, "probe", NOW, timedelta(days=365))
        return earlier is not None

    async def attempts_in(self, window: datetime) -> int:
        """The window's count so far (counting one more to read it)."""
        return await self.logins.count_attempt("203.0.113.7", window) - 1


@pytest.fixture
def world() -> World:
    idempotency = InMemoryIdempotencyStore()
    revocations = InMemoryRevocationStore()
    logins = InMemoryLoginAttemptStore()
    policy = ThrottlePolicy(max_failed_logins=3, lockout=LOCKOUT)
    return World(
        idempotency,
        revocations,
        logins,
        policy,
        Housekeeping(
            idempotency=idempotency,
            revocations=revocations,
            logins=logins,
            throttle=policy,
            token_leeway=LEEWAY,
        ),
    )


async def test_with_nothing_stored_nothing_is_purged(world: World) -> None:
    assert await world.housekeeping.purge_expired(NOW) == Purged(0, 0, 0)


async def test_idempotency_keys_go_once_the_window_has_passed_and_not_before(
    world: World,
) -> None:
    ages = {
        "25 hours": timedelta(hours=25),
        "just past the window": IDEMPOTENCY_WINDOW + TICK,
        "exactly the window": IDEMPOTENCY_WINDOW,
        "23 hours": timedelta(hours=23),
        "just now": timedelta(0),
    }
    for key, age in ages.items():
        assert (
            await world.idempotency.claim(OWNER, key, "fp", NOW - age, IDEMPOTENCY_WINDOW) is None
        )

    purged = await world.housekeeping.purge_expired(NOW)

    assert purged.idempotency_keys == 2
    assert {key: await world.key_is_remembered(key) for key in ages} == {
        "25 hours": False,
        "just past the window": False,
        "exactly the window": True,  # a retry at this very moment still gets its task
        "23 hours": True,
        "just now": True,
    }


async def test_revoked_tokens_go_once_the_verifiers_leeway_has_passed_too(world: World) -> None:
    expiries = {
        "expired an hour ago": NOW - timedelta(hours=1),
        "past the leeway": NOW - LEEWAY - TICK,
        "expired, within the leeway": NOW - LEEWAY + timedelta(seconds=1),
        "expires now": NOW,
        "live": NOW + timedelta(hours=1),
    }
    for key, expires_at in expiries.items():
        await world.revocations.revoke(key, expires_at)

    purged = await world.housekeeping.purge_expired(NOW)

    assert purged.revoked_tokens == 2
    # A token the verifier would still accept must stay refused.
    assert {key: world.revocations.is_revoked(key) for key in expiries} == {
        "expired an hour ago": False,
        "past the leeway": False,
        "expired, within the leeway": True,
        "expires now": True,
        "live": True,
    }


async def test_failed_login_windows_go_once_their_lockout_is_over(world: World) -> None:
    started = {
        "over long ago": NOW - timedelta(days=2),
        "just over": NOW - LOCKOUT - TICK,
        "ends now": NOW - LOCKOUT,
        "still running": NOW - LOCKOUT + timedelta(seconds=1),
        "just started": NOW,
    }
    for key, at in started.items():
        await world.logins.record_failed_login(key, at, LOCKOUT)

    purged = await world.housekeeping.purge_expired(NOW)

    assert purged.login_windows == 2
    assert {key: world.logins.failures_of(key) is not None for key in started} == {
        "over long ago": False,
        "just over": False,
        "ends now": True,
        "still running": True,
        "just started": True,
    }


async def test_attempt_windows_go_once_a_full_minute_has_passed_since_they_ended(
    world: World,
) -> None:
    windows = [MINUTE_NOW - timedelta(minutes=m) for m in (0, 1, 2, 60)]
    for count, window in enumerate(windows, start=1):
        for _ in range(count):
            await world.logins.count_attempt("203.0.113.7", window)

    purged = await world.housekeeping.purge_expired(NOW)

    assert purged.login_windows == 2
    # The current minute's window, and the one before it, where a request that read the
    # clock just before the minute turned may still be counting, keep their counts.
    assert [await world.attempts_in(window) for window in windows] == [1, 2, 0, 0]


async def test_the_previous_attempt_window_is_kept_even_right_after_the_minute_turns(
    world: World,
) -> None:
    ended = MINUTE_NOW
    for _ in range(5):
        await world.logins.count_attempt("203.0.113.7", ended - timedelta(minutes=1))

    await world.housekeeping.purge_expired(ended + TICK)

    assert await world.attempts_in(ended - timedelta(minutes=1)) == 5


async def test_a_running_lockout_holds_across_a_purge_and_ends_when_it_would_have(
    world: World,
) -> None:
    clock = FixedClock(NOW)
    throttle = LoginThrottle(store=world.logins, clock=clock, policy=world.policy)
    key = account_key("alice@example.com")
    for _ in range(world.policy.max_failed_logins):
        await throttle.attempt(key)

    clock.set(NOW + LOCKOUT - timedelta(seconds=1))
    await world.housekeeping.purge_expired(clock.now())
    with pytest.raises(TooManyFailedLogins):
        await throttle.attempt(key)

    clock.set(NOW + LOCKOUT)
    assert (await world.housekeeping.purge_expired(clock.now())).login_windows == 0
    await throttle.attempt(key)  # a new window


async def test_each_purge_counts_only_what_it_forgot(world: World) -> None:
    await world.idempotency.claim(OWNER, "old", "fp", NOW - timedelta(days=2), IDEMPOTENCY_WINDOW)
    await world.revocations.revoke("old", NOW - timedelta(days=2))
    await world.logins.record_failed_login("old", NOW - timedelta(days=2), LOCKOUT)

    first = await world.housekeeping.purge_expired(NOW)

    assert first == Purged(idempotency_keys=1, revoked_tokens=1, login_windows=1)
    assert first.total == 3
    assert await world.housekeeping.purge_expired(NOW) == Purged(0, 0, 0)
