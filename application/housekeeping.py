"""Housekeeping: forgetting what no request will ask about again, in the background rather than
inside ordinary writes."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from application.ports import IdempotencyStore, LoginAttemptStore, RevocationStore
from application.tasks import IDEMPOTENCY_WINDOW
from application.throttling import ThrottlePolicy, attempt_window

# The window that ended last is kept a minute longer: a request that read the clock just
# before the minute turned, or in a process whose clock lags, may still count in it.
_ATTEMPT_WINDOWS_KEPT_FOR = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Purged:
    """How many records one purge forgot, by kind."""

    idempotency_keys: int
    revoked_tokens: int
    login_windows: int
    """Failed-login windows and per-address attempt windows."""

    @property
    def total(self) -> int:
        return self.idempotency_keys + self.revoked_tokens + self.login_windows


class Housekeeping:
    def __init__(
        self,
        *,
        idempotency: IdempotencyStore,
        revocations: RevocationStore,
        logins: LoginAttemptStore,
        throttle: ThrottlePolicy,
        token_leeway: timedelta,
    ) -> None:
        """throttle: the policy the service's LoginThrottle applies; token_leeway: how long
        after its expiry the token verifier still accepts a token."""
        self._idempotency = idempotency
        self._revocations = revocations
        self._logins = logins
        self._throttle = throttle
        self._token_leeway = token_leeway

    async def purge_expired(self, now: datetime) -> Purged:
        """Forgets, as of `now`, only what can no longer change an answer: idempotency keys
        claimed more than IDEMPOTENCY_WINDOW ago, logged-out tokens that even the verifier's
        leeway no longer accepts, failed-login windows whose lockout is over, and per-address
        attempt windows older than the last one to end. Safe to run at any moment, from any
        process, concurrently with requests and with itself; returns how many records went.
        Raises StorageUnavailable when the stores cannot be reached (nothing, or only part,
        is forgotten then; the next run forgets the rest)."""
        idempotency_keys = await self._idempotency.purge_expired(now - IDEMPOTENCY_WINDOW)
        revoked_tokens = await self._revocations.purge_expired(now - self._token_leeway)
        login_windows = await self._logins.purge_expired(
            failures_started_before=now - self._throttle.lockout,
            attempts_started_before=attempt_window(now - _ATTEMPT_WINDOWS_KEPT_FOR),
        )
        return Purged(idempotency_keys, revoked_tokens, login_windows)
