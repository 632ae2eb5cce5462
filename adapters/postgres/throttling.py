"""Counters against brute force, in raw SQL: failed logins per account, attempts per client."""

from datetime import datetime, timedelta

from adapters.postgres.pool import PostgresDatabase
from adapters.postgres.rows import utc
from application.ports import FailedLogins


class PostgresLoginAttemptStore:
    def __init__(self, database: PostgresDatabase) -> None:
        self._database = database

    async def record_failed_login(
        self, account_key: str, now: datetime, window: timedelta
    ) -> FailedLogins:
        async with self._database.connection() as connection:
            cursor = await connection.execute(
                """INSERT INTO login_failures AS f (account_key, failures, window_started_at)
                   VALUES (%(key)s, 1, %(now)s)
                   ON CONFLICT (account_key) DO UPDATE SET
                       failures = CASE WHEN f.window_started_at <= %(expired_before)s
                                       THEN 1 ELSE f.failures + 1 END,
                       window_started_at = CASE WHEN f.window_started_at <= %(expired_before)s
                                                THEN %(now)s ELSE f.window_started_at END
                   RETURNING failures, window_started_at""",
                # The cutoff is computed here: interval arithmetic in SQL would count days in
                # the session's time zone, 23 or 25 hours across a daylight-saving change.
                {"key": account_key, "now": now, "expired_before": now - window},
            )
            row = await cursor.fetchone()
            assert row is not None
            return FailedLogins(row[0], utc(row[1]))

    async def release_failed_login(self, account_key: str) -> None:
        # Two statements, so that the DELETE sees what a concurrent release just committed
        # (one statement would judge the row by its snapshot from before that release).
        async with self._database.connection() as connection:
            decremented = await connection.execute(
                """UPDATE login_failures SET failures = failures - 1
                   WHERE account_key = %(key)s AND failures > 1
                   RETURNING failures""",
                {"key": account_key},
            )
            if await decremented.fetchone() is None:
                await connection.execute(
                    "DELETE FROM login_failures WHERE account_key = %(key)s AND failures = 1",
                    {"key": account_key},
                )

    async def clear_failed_logins(self, account_key: str) -> None:
        async with self._database.connection() as connection:
            await connection.execute(
                "DELETE FROM login_failures WHERE account_key = %(key)s", {"key": account_key}
            )

    async def count_attempt(self, client: str, window_started_at: datetime) -> int:
        async with self._database.connection() as connection:
            cursor = await connection.execute(
                """INSERT INTO auth_attempts AS a (client, window_started_at, attempts)
                   VALUES (%(client)s, %(window)s, 1)
                   ON CONFLICT (client, window_started_at)
                   DO UPDATE SET attempts = a.attempts + 1
                   RETURNING attempts""",
                {"client": client, "window": window_started_at},
            )
            row = await cursor.fetchone()
            assert row is not None
            count: int = row[0]
            return count

    async def purge_expired(
        self, *, failures_started_before: datetime, attempts_started_before: datetime
    ) -> int:
        async with self._database.connection() as connection:
            failures = await connection.execute(
                "DELETE FROM login_failures WHERE window_started_at < %(before)s",
                {"before": failures_started_before},
            )
            attempts = await connection.execute(
                "DELETE FROM auth_attempts WHERE window_started_at < %(before)s",
                {"before": attempts_started_before},
            )
            return failures.rowcount + attempts.rowcount
