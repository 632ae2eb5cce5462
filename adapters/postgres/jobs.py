"""Rounds of the background jobs, handed out through PostgreSQL to one process of many."""

from datetime import datetime, timedelta

from adapters.postgres.pool import PostgresDatabase


class PostgresPeriodicJobs:
    def __init__(self, database: PostgresDatabase) -> None:
        self._database = database

    async def claim(self, name: str, now: datetime, every: timedelta) -> bool:
        # One statement: one short transaction, whatever a pooler does with sessions. A row
        # that a concurrent claim has locked is skipped, not waited for: that claim gets it.
        async with self._database.connection() as connection:
            cursor = await connection.execute(
                """WITH due AS (
                       SELECT name FROM periodic_jobs
                       WHERE name = %(name)s AND claimed_at <= %(due_since)s
                       FOR UPDATE SKIP LOCKED
                   ), claimed AS (
                       UPDATE periodic_jobs AS job SET claimed_at = %(now)s
                       FROM due WHERE job.name = due.name
                       RETURNING 1
                   ), first AS (
                       INSERT INTO periodic_jobs (name, claimed_at)
                       SELECT %(name)s, %(now)s
                       WHERE NOT EXISTS (SELECT FROM periodic_jobs WHERE name = %(name)s)
                       ON CONFLICT (name) DO NOTHING
                       RETURNING 1
                   )
                   SELECT EXISTS (SELECT FROM claimed) OR EXISTS (SELECT FROM first)""",
                {"name": name, "now": now, "due_since": now - every},
            )
            row = await cursor.fetchone()
        assert row is not None
        claimed: bool = row[0]
        return claimed
