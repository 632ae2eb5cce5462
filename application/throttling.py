"""Brute-force protection for logins: per account, and per client address."""

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from application.errors import TooManyAttempts, TooManyFailedLogins
from application.ports import Clock, LoginAttemptStore

_MINUTE = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    max_failed_logins: int = 5
    lockout: timedelta = timedelta(minutes=15)
    attempts_per_minute: int = 30
    """Login and register attempts per client address; 0 turns the limit off."""


def attempt_window(moment: datetime) -> datetime:
    """The start of the per-address window a moment counts in: its minute."""
    return moment.replace(second=0, microsecond=0)


def account_key(email: str) -> str:
    """Registered or not, valid or not, an email maps to one key; a digest keeps unregistered
    addresses out of the database."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


class LoginThrottle:
    def __init__(self, *, store: LoginAttemptStore, clock: Clock, policy: ThrottlePolicy) -> None:
        self._store = store
        self._clock = clock
        self._policy = policy

    async def count_attempt(self, client: str | None) -> None:
        """Raises TooManyAttempts past the per-address limit. No client (the command line) is
        never limited."""
        if client is None or self._policy.attempts_per_minute == 0:
            return
        now = self._clock.now()
        window = attempt_window(now)
        if await self._store.count_attempt(client, window) > self._policy.attempts_per_minute:
            raise TooManyAttempts(_seconds_until(window + _MINUTE - now))

    async def attempt(self, key: str) -> None:
        """Counts a password attempt on the account as a failure before the password is even
        checked, in one atomic step of the store, so that simultaneous guesses cannot all slip
        under the limit; raises TooManyFailedLogins past it. `succeeded` then clears the
        count, and `abandoned` takes back an attempt that reached no verdict."""
        now = self._clock.now()
        recorded = await self._store.record_failed_login(key, now, self._policy.lockout)
        if recorded.count > self._policy.max_failed_logins:
            remaining = recorded.window_started_at + self._policy.lockout - now
            raise TooManyFailedLogins(_seconds_until(remaining))

    async def abandoned(self, key: str) -> None:
        """The attempt ended without a verdict (server busy, database down): not a failure."""
        await self._store.release_failed_login(key)

    async def succeeded(self, key: str) -> None:
        await self._store.clear_failed_logins(key)


def _seconds_until(remaining: timedelta) -> int:
    return max(1, math.ceil(remaining.total_seconds()))
