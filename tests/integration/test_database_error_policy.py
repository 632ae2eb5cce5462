"""The database error policy of adapters/postgres, against the real server: a deadlock or a
serialization failure is a TransactionConflict, and PostgresDatabase.atomically runs the block
once more after one; a statement past statement_timeout or lock_timeout is a StatementTimedOut,
one cancelled otherwise or a session the server ended is StorageUnavailable; and the pool
serves on after each."""

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo
from psycopg_pool import AsyncConnectionPool

from adapters.postgres.pool import PostgresDatabase
from application.errors import StatementTimedOut, StorageUnavailable, TransactionConflict
from tests.integration.support import Background, execute, opened_pool
from tests.integration.test_postgres_transactions import count_outside, pool_rollbacks

IDLE_IN_TRANSACTION_MS = 600
SMALL_TIMEOUTS = (
    f"-c statement_timeout=500 -c lock_timeout=200 "
    f"-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_MS}"
)
"""Set in the URL, which wins over the service's own. Small enough to pass quickly in a test,
large enough for any statement of it to finish; the lock_timeout below the statement_timeout,
or the latter would end a lock wait first."""
DEADLOCK_SECONDS = 20
"""Far beyond PostgreSQL's deadlock_timeout (1 s), after which it aborts one of the blocks."""


# --- helpers ------------------------------------------------------------------------------------


@pytest.fixture
async def timed_pool(clean_database: str) -> AsyncIterator[AsyncConnectionPool]:
    """One connection, with small timeouts: what it lends next is that one or its replacement."""
    url = make_conninfo(clean_database, options=SMALL_TIMEOUTS)
    async with opened_pool(url, min_size=1, max_size=1) as pool:
        yield pool


async def backend_pid(database: PostgresDatabase) -> int:
    ((pid,),) = await execute(database, "SELECT pg_backend_pid()")
    return int(pid)


def two_tasks(url: str) -> tuple[uuid.UUID, uuid.UUID]:
    """Two rows to lock, titled "first" and "second"."""
    owner, first, second = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(
            "INSERT INTO users (id, email, password_hash) VALUES (%s, 'o@example.com', 'h')",
            (owner,),
        )
        for task, title in ((first, "first"), (second, "second")):
            connection.execute(
                "INSERT INTO tasks (id, title, user_id) VALUES (%s, %s, %s)", (task, title, owner)
            )
    return first, second


MARK = "UPDATE tasks SET title = title || %s WHERE id = %s"


def titles(url: str, *ids: uuid.UUID) -> list[str]:
    with psycopg.connect(url, autocommit=True) as connection:
        return [
            connection.execute("SELECT title FROM tasks WHERE id = %s", (task,)).fetchall()[0][0]
            for task in ids
        ]


async def until_waiting_for_a_lock(url: str, pid: int, timeout: float = 10) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while (
        await count_outside(
            url, "SELECT count(*) FROM pg_locks WHERE pid = %s AND NOT granted", pid
        )
        == 0
    ):
        assert time.monotonic() < deadline, f"backend {pid} never waited for a lock"
        await asyncio.sleep(0.02)


async def raise_from_the_server(database: PostgresDatabase, condition: str) -> None:
    """The server raises the error of that name, in the calling block's transaction."""
    await execute(
        database,
        f"DO $$ BEGIN RAISE EXCEPTION 'as a concurrent transaction would' USING ERRCODE = "
        f"'{condition}'; END $$",
    )


@contextmanager
def row_locked(url: str, task: uuid.UUID) -> Iterator[None]:
    """Another session holds the task's row lock for the block, as a slow writer would."""
    with psycopg.connect(url) as connection:
        connection.execute("SELECT 1 FROM tasks WHERE id = %s FOR UPDATE", (task,))
        yield
        connection.rollback()


def broken_returns(pool: AsyncConnectionPool) -> tuple[int, int]:
    """Connections given back to the pool broken, and connections it found lost."""
    stats = pool.get_stats()
    return stats.get("returns_bad", 0), stats.get("connections_lost", 0)


# --- conflicts: atomically --------------------------------------------------------------------


async def test_a_deadlock_between_two_blocks_runs_the_loser_once_more_and_both_complete(
    database: PostgresDatabase, clean_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    first, second = two_tasks(clean_database)
    holding = {"A": asyncio.Event(), "B": asyncio.Event()}
    attempts = {"A": 0, "B": 0}

    def work(me: str, other: str, mine: uuid.UUID, theirs: uuid.UUID) -> Callable[[], Any]:
        async def run() -> str:
            attempts[me] += 1
            await execute(database, MARK, me, mine)
            if attempts[me] == 1:  # each holds a row the other locks next: a deadlock
                holding[me].set()
                await holding[other].wait()
            await execute(database, MARK, me, theirs)
            return me

        return run

    caplog.set_level(logging.INFO, "todo_api.database")
    results = await asyncio.wait_for(
        asyncio.gather(
            database.atomically(work("A", "B", first, second)),
            database.atomically(work("B", "A", second, first)),
        ),
        DEADLOCK_SECONDS,
    )

    assert sorted(results) == ["A", "B"]
    assert sorted(attempts.values()) == [1, 2], attempts  # the loser ran once more
    # Each block's two writes took effect once: its aborted attempt left nothing behind.
    for title, start in zip(
        titles(clean_database, first, second), ("first", "second"), strict=True
    ):
        assert title.startswith(start)
        assert sorted(title.removeprefix(start)) == ["A", "B"], title
    retries = [r.getMessage() for r in caplog.records if "once more" in r.getMessage()]
    assert len(retries) == 1
    assert "deadlock detected" in retries[0]


async def test_a_block_deadlocked_again_when_run_once_more_raises_transaction_conflict(
    pool: AsyncConnectionPool,
    database: PostgresDatabase,
    clean_database: str,
    background: Background,
) -> None:
    """A session of the test's own deadlocks with the block twice. The block waits for a lock
    first, so PostgreSQL's check (deadlock_timeout after a wait begins) finds the deadlock in
    the block's session first, and aborts the block each time."""
    first, second = two_tasks(clean_database)
    block_holds = [asyncio.Event(), asyncio.Event()]
    other_holds = [asyncio.Event(), asyncio.Event()]
    pids: list[int] = []

    async def block() -> None:
        attempt = len(pids)
        pids.append(await backend_pid(database))
        await execute(database, MARK, "B", first)
        block_holds[attempt].set()
        await other_holds[attempt].wait()
        await execute(database, MARK, "B", second)  # waits for the other session

    async def other_session() -> None:
        async with await psycopg.AsyncConnection.connect(clean_database) as connection:
            for attempt in range(2):
                await block_holds[attempt].wait()
                await connection.execute(MARK, ("o", second))
                other_holds[attempt].set()
                await until_waiting_for_a_lock(clean_database, pids[attempt])
                await asyncio.sleep(0.3)  # so that the block's check comes well before ours
                await connection.execute(MARK, ("o", first))
                await connection.commit()

    other = background.start(other_session())
    with pytest.raises(TransactionConflict) as raised:
        await asyncio.wait_for(database.atomically(block), DEADLOCK_SECONDS)
    await asyncio.wait_for(other, DEADLOCK_SECONDS)

    assert len(pids) == 2  # run twice, in two transactions
    assert isinstance(raised.value.__cause__, psycopg.errors.DeadlockDetected)
    assert raised.value.retry_after_seconds == 1
    assert titles(clean_database, first, second) == ["firstoo", "secondoo"]  # nothing of the block
    assert pool.get_stats()["pool_available"] == 2  # both connections back, usable
    assert await execute(database, "SELECT 1") == [(1,)]


async def test_a_serialization_failure_is_a_conflict_too_and_the_retry_runs_in_a_fresh_block(
    database: PostgresDatabase, clean_database: str
) -> None:
    transactions: list[str] = []

    async def work() -> str:
        ((xid,),) = await execute(database, "SELECT pg_current_xact_id()::text")
        transactions.append(xid)
        await execute(
            database,
            "INSERT INTO users (id, email, password_hash) VALUES (%s, %s, 'h')",
            uuid.uuid4(),
            f"attempt{len(transactions)}@example.com",
        )
        if len(transactions) == 1:
            await raise_from_the_server(database, "serialization_failure")
        return "done"

    assert await database.atomically(work) == "done"

    assert len(set(transactions)) == 2
    assert await count_outside(clean_database, "SELECT count(*) FROM users") == 1
    assert (
        await count_outside(
            clean_database, "SELECT count(*) FROM users WHERE email = 'attempt2@example.com'"
        )
        == 1
    )


async def test_atomically_inside_an_open_block_is_a_savepoint_never_run_again(
    pool: AsyncConnectionPool, database: PostgresDatabase, clean_database: str
) -> None:
    runs = 0

    async def work() -> None:
        nonlocal runs
        runs += 1
        await raise_from_the_server(database, "deadlock_detected")

    with pytest.raises(TransactionConflict):
        async with database.atomic():
            await database.atomically(work)

    assert runs == 1
    assert pool.get_stats()["pool_available"] == 2


async def test_the_outermost_atomically_runs_the_whole_block_once_more_inner_ones_with_it(
    database: PostgresDatabase, clean_database: str
) -> None:
    outer_runs = inner_runs = 0

    async def inner() -> None:
        nonlocal inner_runs
        inner_runs += 1
        if inner_runs == 1:
            await raise_from_the_server(database, "serialization_failure")

    async def outer() -> None:
        nonlocal outer_runs
        outer_runs += 1
        await execute(
            database,
            "INSERT INTO users (id, email, password_hash) VALUES (%s, %s, 'h')",
            uuid.uuid4(),
            f"outer{outer_runs}@example.com",
        )
        await database.atomically(inner)

    await database.atomically(outer)

    assert (outer_runs, inner_runs) == (2, 2)
    emails = await count_outside(
        clean_database, "SELECT count(*) FROM users WHERE email = 'outer2@example.com'"
    )
    assert (emails, await count_outside(clean_database, "SELECT count(*) FROM users")) == (1, 1)


async def test_other_errors_of_a_block_are_not_run_again(database: PostgresDatabase) -> None:
    runs = 0

    async def work() -> None:
        nonlocal runs
        runs += 1
        await raise_from_the_server(database, "unique_violation")

    with pytest.raises(psycopg.errors.UniqueViolation):
        await database.atomically(work)
    assert runs == 1


# --- timeouts ---------------------------------------------------------------------------------


async def test_a_statement_past_statement_timeout_is_statement_timed_out_and_the_pool_serves_on(
    timed_pool: AsyncConnectionPool, clean_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    database = PostgresDatabase(timed_pool)
    pid = await backend_pid(database)

    started = time.monotonic()
    with pytest.raises(StatementTimedOut) as outside:
        await execute(database, "SELECT pg_sleep(5)")
    assert time.monotonic() - started < 2
    with pytest.raises(StatementTimedOut) as inside:
        async with database.atomic():
            await execute(
                database,
                "INSERT INTO users (id, email, password_hash) VALUES (%s, 'a@example.com', 'h')",
                uuid.uuid4(),
            )
            await execute(database, "SELECT pg_sleep(5)")

    for raised in (outside, inside):
        assert isinstance(raised.value.__cause__, psycopg.errors.QueryCanceled)
    # The block rolled back, and its connection came back idle: the same one serves on.
    assert await count_outside(clean_database, "SELECT count(*) FROM users") == 0
    for _ in range(3):
        assert await backend_pid(database) == pid
    async with database.atomic():
        assert await execute(database, "SELECT 1") == [(1,)]
    assert broken_returns(timed_pool) == (0, 0)
    assert timed_pool.get_stats()["pool_size"] == 1
    assert pool_rollbacks(caplog) == []


async def test_a_statement_cancelled_by_an_operator_is_no_timeout(
    database: PostgresDatabase, clean_database: str, background: Background
) -> None:
    sleeping = background.start(execute(database, "SELECT pg_sleep(10)"))
    pid = await until_sleeping(clean_database)
    await count_outside(clean_database, "SELECT count(*) FROM pg_cancel_backend(%s)", pid)

    with pytest.raises(StorageUnavailable) as raised:
        await asyncio.wait_for(sleeping, 5)
    assert type(raised.value) is StorageUnavailable  # neither a timeout nor a conflict
    assert "user request" in str(raised.value.__cause__)
    assert await execute(database, "SELECT 1") == [(1,)]


async def until_sleeping(url: str) -> int:
    """The backend running pg_sleep(10), once it does."""
    deadline = time.monotonic() + 10
    query = (
        "SELECT coalesce(max(pid), 0) FROM pg_stat_activity "
        "WHERE query = 'SELECT pg_sleep(10)' AND state = 'active'"
    )
    while not (pid := await count_outside(url, query)):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    return pid


async def test_a_write_waiting_past_lock_timeout_is_statement_timed_out_then_succeeds(
    timed_pool: AsyncConnectionPool, clean_database: str
) -> None:
    database = PostgresDatabase(timed_pool)
    first, _ = two_tasks(clean_database)

    with row_locked(clean_database, first), pytest.raises(StatementTimedOut) as raised:
        await execute(database, MARK, "x", first)

    assert isinstance(raised.value.__cause__, psycopg.errors.LockNotAvailable)
    await execute(database, MARK, "y", first)  # the lock released: the write goes through
    assert titles(clean_database, first) == ["firsty"]
    assert broken_returns(timed_pool) == (0, 0)


async def test_a_block_left_idle_past_its_timeout_is_storage_unavailable_and_replaced(
    timed_pool: AsyncConnectionPool, clean_database: str
) -> None:
    database = PostgresDatabase(timed_pool)
    pid = await backend_pid(database)

    with pytest.raises(StorageUnavailable) as raised:
        async with database.atomic():
            await execute(database, "SELECT 1")
            await asyncio.sleep(IDLE_IN_TRANSACTION_MS / 1000 + 0.5)
            await execute(database, "SELECT 1")

    assert type(raised.value) is StorageUnavailable  # not an InternalError, a 500
    # The server ended that session: the pool replaces its connection and serves on.
    assert await backend_pid(database) != pid
    assert await execute(database, "SELECT 1") == [(1,)]
