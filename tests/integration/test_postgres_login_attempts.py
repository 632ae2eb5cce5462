"""What only PostgresLoginAttemptStore can get wrong, beyond the shared contract suite: several
connections counting at once, the rows it leaves behind, and the session's time zone."""

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from adapters.memory import InMemoryLoginAttemptStore
from adapters.postgres.pool import PostgresDatabase
from adapters.postgres.throttling import PostgresLoginAttemptStore
from application.ports import FailedLogins
from tests.integration.support import opened_pool

T0 = datetime(2024, 5, 1, 12, 30, 45, 123456, tzinfo=UTC)
MINUTE = T0.replace(second=0, microsecond=0)
WINDOW = timedelta(minutes=15)
CONCURRENT_CALLS = 20


@pytest.fixture
async def pool(clean_database: str) -> AsyncIterator[AsyncConnectionPool]:
    async with opened_pool(clean_database, min_size=4, max_size=4) as pool:
        yield pool


def failures_of(url: str, key: str) -> FailedLogins | None:
    with psycopg.connect(url) as connection:
        row = connection.execute(
            "SELECT failures, window_started_at FROM login_failures WHERE account_key = %s",
            (key,),
        ).fetchone()
    return None if row is None else FailedLogins(row[0], row[1])


def rows_of(url: str, table: str, key_column: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as connection:
        query = sql.SQL("SELECT {}, window_started_at FROM {} ORDER BY 1, 2").format(
            sql.Identifier(key_column), sql.Identifier(table)
        )
        return connection.execute(query).fetchall()


# --- concurrency -------------------------------------------------------------------------------


async def test_concurrent_failed_logins_for_one_key_are_all_counted(
    pool: AsyncConnectionPool, clean_database: str
) -> None:
    store = PostgresLoginAttemptStore(PostgresDatabase(pool))

    results = await asyncio.gather(
        *(store.record_failed_login("key-a", T0, WINDOW) for _ in range(CONCURRENT_CALLS))
    )

    # No lost update: each call saw a count of its own.
    assert sorted(r.count for r in results) == list(range(1, CONCURRENT_CALLS + 1))
    assert {r.window_started_at for r in results} == {T0}
    assert failures_of(clean_database, "key-a") == FailedLogins(CONCURRENT_CALLS, T0)


async def test_concurrent_failed_logins_for_one_key_across_windows_lose_nothing(
    pool: AsyncConnectionPool, clean_database: str
) -> None:
    store = PostgresLoginAttemptStore(PostgresDatabase(pool))
    for _ in range(3):
        await store.record_failed_login("key-a", T0 - WINDOW, WINDOW)  # an old window

    results = await asyncio.gather(
        *(store.record_failed_login("key-a", T0, WINDOW) for _ in range(CONCURRENT_CALLS))
    )

    # Exactly one call restarts the window; the others count on in the new one.
    assert sorted(r.count for r in results) == list(range(1, CONCURRENT_CALLS + 1))
    assert failures_of(clean_database, "key-a") == FailedLogins(CONCURRENT_CALLS, T0)


async def test_concurrent_failures_of_many_keys_while_a_purge_runs_all_succeed(
    pool: AsyncConnectionPool, clean_database: str
) -> None:
    store = PostgresLoginAttemptStore(PostgresDatabase(pool))
    for n in range(10):
        await store.record_failed_login(f"expired-{n}", T0 - WINDOW - timedelta(minutes=n), WINDOW)
    keys = [f"key-{n:02}" for n in range(CONCURRENT_CALLS)]

    *results, purged = await asyncio.gather(
        *(store.record_failed_login(k, T0, WINDOW) for k in keys),
        store.purge_expired(failures_started_before=T0 - WINDOW, attempts_started_before=MINUTE),
    )

    assert results == [FailedLogins(1, T0)] * CONCURRENT_CALLS
    assert purged == 9  # the expired rows before the cut-off; the one at it goes next time
    assert rows_of(clean_database, "login_failures", "account_key") == [
        ("expired-0", T0 - WINDOW),
        *((k, T0) for k in keys),
    ]


async def test_concurrent_attempts_of_one_client_are_all_counted(
    pool: AsyncConnectionPool, clean_database: str
) -> None:
    store = PostgresLoginAttemptStore(PostgresDatabase(pool))
    await store.count_attempt("198.51.100.7", MINUTE - timedelta(minutes=1))

    counts = await asyncio.gather(
        *(store.count_attempt("198.51.100.7", MINUTE) for _ in range(CONCURRENT_CALLS))
    )

    assert sorted(counts) == list(range(1, CONCURRENT_CALLS + 1))
    assert await store.count_attempt("198.51.100.7", MINUTE) == CONCURRENT_CALLS + 1
    assert rows_of(clean_database, "auth_attempts", "client") == [
        ("198.51.100.7", MINUTE - timedelta(minutes=1)),
        ("198.51.100.7", MINUTE),
    ]


async def test_concurrent_attempts_of_different_clients_are_counted_apart(
    pool: AsyncConnectionPool,
) -> None:
    store = PostgresLoginAttemptStore(PostgresDatabase(pool))
    clients = [f"198.51.100.{i % 4}" for i in range(CONCURRENT_CALLS)]

    await asyncio.gather(*(store.count_attempt(client, MINUTE) for client in clients))

    for client in sorted(set(clients)):
        assert await store.count_attempt(client, MINUTE) == CONCURRENT_CALLS // 4 + 1


# --- the rows left behind ----------------------------------------------------------------------


async def test_recording_a_failure_or_counting_an_attempt_purges_nothing(
    pool: AsyncConnectionPool, clean_database: str
) -> None:
    # Purging is background work: an ordinary write neither waits on nor locks other rows.
    store = PostgresLoginAttemptStore(PostgresDatabase(pool))
    await store.record_failed_login("long-over", T0 - timedelta(days=2), WINDOW)
    await store.count_attempt("a", MINUTE - timedelta(minutes=5))

    await store.record_failed_login("key-a", T0, WINDOW)
    await store.count_attempt("c", MINUTE)

    assert rows_of(clean_database, "login_failures", "account_key") == [
        ("key-a", T0),
        ("long-over", T0 - timedelta(days=2)),
    ]
    assert rows_of(clean_database, "auth_attempts", "client") == [
        ("a", MINUTE - timedelta(minutes=5)),
        ("c", MINUTE),
    ]


async def test_the_purge_deletes_the_rows_of_windows_that_are_over_and_keeps_the_rest(
    pool: AsyncConnectionPool, clean_database: str
) -> None:
    store = PostgresLoginAttemptStore(PostgresDatabase(pool))
    for key, start in [
        ("long-over", T0 - timedelta(days=2)),
        ("just-over", T0 - WINDOW - timedelta(microseconds=1)),
        ("live", T0 - WINDOW),
    ]:
        await store.record_failed_login(key, start, WINDOW)
    for client, minutes_ago in [("a", 5), ("b", 1), ("a", 0)]:
        await store.count_attempt(client, MINUTE - timedelta(minutes=minutes_ago))

    purged = await store.purge_expired(
        failures_started_before=T0 - WINDOW, attempts_started_before=MINUTE
    )

    assert purged == 4
    assert rows_of(clean_database, "login_failures", "account_key") == [("live", T0 - WINDOW)]
    assert rows_of(clean_database, "auth_attempts", "client") == [("a", MINUTE)]


# --- the session's time zone -------------------------------------------------------------------


async def test_a_day_long_window_lasts_24_hours_whatever_the_sessions_time_zone(
    clean_database: str,
) -> None:
    # A managed server may set another TimeZone for the session. The lockout may be set to days
    # (LOGIN_LOCKOUT_MINUTES up to a week); across a daylight saving change a calendar day in
    # Berlin is 23 hours long, but a window is a duration, as the in-memory store counts it.
    started = datetime(2024, 3, 30, 12, 0, tzinfo=UTC)  # Europe's clocks go forward next night
    window = timedelta(days=1)
    within = started + timedelta(hours=23, minutes=30)
    async with opened_pool(clean_database, min_size=1, max_size=1) as pool:
        async with pool.connection() as connection:  # the pool's one connection
            await connection.execute("SET TIME ZONE 'Europe/Berlin'")
        store = PostgresLoginAttemptStore(PostgresDatabase(pool))
        await store.record_failed_login("key-a", started, window)
        recorded = await store.record_failed_login("key-a", within, window)

    memory = InMemoryLoginAttemptStore()
    await memory.record_failed_login("key-a", started, window)
    assert await memory.record_failed_login("key-a", within, window) == FailedLogins(2, started)
    assert recorded == FailedLogins(2, started)
