"""adapters/postgres/pool.py beyond one statement: a unit of work's single connection and
transaction, two requests racing for one Idempotency-Key, and a pool that refuses to queue
more than max_waiting requests."""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from adapters.postgres.pool import UnitOfWork, create_pool, open_pool, transaction, unit_of_work
from adapters.postgres.repositories import (
    PostgresIdempotencyStore,
    PostgresTaskRepository,
    PostgresUserRepository,
)
from application.errors import ServerBusy
from application.ports import EarlierCreation
from domain.errors import EmailAlreadyRegistered
from domain.tasks import Task, new_task
from domain.users import User

T0 = datetime(2024, 5, 1, 12, 30, 45, 123456, tzinfo=UTC)
TTL = timedelta(hours=24)
HOLD = 0.3  # seconds a connection is held by the tests that make others wait for it


@pytest.fixture
async def pool(clean_database: str) -> AsyncIterator[AsyncConnectionPool]:
    pool = create_pool(clean_database, min_size=2, max_size=2, timeout=5)
    await open_pool(pool, wait=True, timeout=5)
    try:
        yield pool
    finally:
        await pool.close()


def a_user(email: str = "alice@example.com") -> User:
    return User(uuid.uuid4(), email, "h", T0, T0)


def a_task(owner: User, title: str = "Buy milk") -> Task:
    return new_task(
        task_id=uuid.uuid4(),
        owner_id=owner.id,
        title=title,
        description=None,
        completed=False,
        now=T0,
    )


def taken(pool: AsyncConnectionPool) -> tuple[int, int]:
    """How many connections the pool has handed out (ever), and how many are idle in it."""
    stats = pool.get_stats()
    return stats.get("requests_num", 0), stats["pool_available"]


async def backend_and_transaction(work: UnitOfWork) -> tuple[int, int]:
    async with transaction(work) as connection:
        cursor = await connection.execute("SELECT pg_backend_pid(), pg_current_xact_id()::text")
        row = await cursor.fetchone()
    assert row is not None
    return row[0], int(row[1])


async def count_outside(url: str, query: str, *params: object) -> int:
    """Counts on a connection of its own: what other transactions can see."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as connection:
        cursor = await connection.execute(query, params)
        row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


# --- one connection, one transaction -----------------------------------------------------------


async def test_a_unit_of_work_takes_a_connection_at_its_first_repository_call_only(
    pool: AsyncConnectionPool,
) -> None:
    requests, idle = taken(pool)
    assert idle == 2

    async with unit_of_work(pool) as work:
        assert taken(pool) == (requests, 2)
        await asyncio.sleep(0)
        assert taken(pool) == (requests, 2)

        await PostgresUserRepository(work).get(uuid.uuid4())
        assert taken(pool) == (requests + 1, 1)

        await PostgresTaskRepository(work).get(uuid.uuid4())
        await PostgresUserRepository(work).get_by_email("nobody@example.com")
        assert taken(pool) == (requests + 1, 1)

    assert taken(pool) == (requests + 1, 2)


async def test_a_unit_of_work_that_never_reaches_the_database_never_waits_for_a_connection(
    clean_database: str,
) -> None:
    pool = create_pool(clean_database, min_size=1, max_size=1, timeout=2)
    await open_pool(pool, wait=True, timeout=5)
    try:
        async with pool.connection():  # the only connection, busy elsewhere
            started = time.monotonic()
            async with unit_of_work(pool):
                pass
            with pytest.raises(ValueError, match="refused before any query"):
                async with unit_of_work(pool):
                    raise ValueError("refused before any query")
            assert time.monotonic() - started < 1.0
        assert taken(pool)[1] == 1
    finally:
        await pool.close()


async def test_every_call_in_a_unit_of_work_shares_one_connection_and_one_transaction(
    pool: AsyncConnectionPool, clean_database: str
) -> None:
    user, other_user = a_user("alice@example.com"), a_user("bob@example.com")

    async with unit_of_work(pool) as work:
        users, tasks = PostgresUserRepository(work), PostgresTaskRepository(work)
        first = await backend_and_transaction(work)
        await users.add(user)
        task = await tasks.add(a_task(user))
        second = await backend_and_transaction(work)

        # Each call sees what the earlier ones wrote...
        assert await users.get(user.id) == user
        page = await tasks.list_for_owner(user.id, completed=None, limit=10)
        assert ([t.id for t in page.tasks], page.total) == ([task.id], 1)
        # ...which no other transaction sees before the commit.
        assert await count_outside(clean_database, "SELECT count(*) FROM users") == 0
        assert await count_outside(clean_database, "SELECT count(*) FROM tasks") == 0
        # Meanwhile the pool's other connection serves other work.
        await PostgresUserRepository(pool).add(other_user)

    assert first == second
    assert await count_outside(clean_database, "SELECT count(*) FROM users") == 2
    assert (
        await count_outside(clean_database, "SELECT count(*) FROM tasks WHERE id = %s", task.id)
        == 1
    )
    assert await PostgresTaskRepository(pool).get(task.id) == task


async def test_a_unit_of_work_that_raises_rolls_back_every_call_and_gives_the_connection_back(
    pool: AsyncConnectionPool, clean_database: str
) -> None:
    user = a_user()
    requests, _ = taken(pool)

    with pytest.raises(RuntimeError, match="after the writes"):
        async with unit_of_work(pool) as work:
            await PostgresUserRepository(work).add(user)
            await PostgresTaskRepository(work).add(a_task(user))
            raise RuntimeError("after the writes")

    assert taken(pool) == (requests + 1, 2)
    for table in ("users", "tasks", "task_counts"):
        assert await count_outside(clean_database, f"SELECT count(*) FROM {table}") == 0, table
    # The connections came back usable, not stuck in the failed transaction.
    for attempt in range(3):
        async with unit_of_work(pool) as work:
            users = PostgresUserRepository(work)
            assert await users.get(user.id) is None
            await users.add(a_user(f"attempt{attempt}@example.com"))
    assert await count_outside(clean_database, "SELECT count(*) FROM users") == 3


async def test_a_failed_statement_in_a_unit_of_work_undoes_the_calls_before_it(
    pool: AsyncConnectionPool, clean_database: str
) -> None:
    taken_email = await PostgresUserRepository(pool).add(a_user("taken@example.com"))
    newcomer = a_user("new@example.com")

    with pytest.raises(EmailAlreadyRegistered):
        async with unit_of_work(pool) as work:
            await PostgresUserRepository(work).add(newcomer)
            await PostgresTaskRepository(work).add(a_task(newcomer))
            await PostgresUserRepository(work).add(a_user(taken_email.email))

    assert await PostgresUserRepository(pool).get(newcomer.id) is None
    assert await count_outside(clean_database, "SELECT count(*) FROM tasks") == 0
    assert taken(pool)[1] == 2


# --- two requests with one Idempotency-Key -----------------------------------------------------


async def create_once(
    pool: AsyncConnectionPool,
    owner: User,
    key: str,
    *,
    claimed: asyncio.Event,
    go_on: asyncio.Event,
    fail: bool = False,
) -> Task | EarlierCreation:
    """What creating a task under an Idempotency-Key does, in one unit of work; pauses between
    its claim and its creation until told to go on."""
    async with unit_of_work(pool) as work:
        store, tasks = PostgresIdempotencyStore(work), PostgresTaskRepository(work)
        earlier = await store.claim(owner.id, key, "fingerprint", T0, TTL)
        claimed.set()
        if earlier is not None:
            return earlier
        await go_on.wait()
        created = await tasks.add(a_task(owner, f"created under {key}"))
        await store.record(owner.id, key, created)
        if fail:
            raise RuntimeError("the first request fails after its claim")
        return created


async def test_a_concurrent_claim_of_the_same_key_waits_for_the_first_and_gets_its_task(
    pool: AsyncConnectionPool, clean_database: str
) -> None:
    owner = await PostgresUserRepository(pool).add(a_user())
    first_claimed, second_claimed, go_on = asyncio.Event(), asyncio.Event(), asyncio.Event()

    first = asyncio.create_task(
        create_once(pool, owner, "key-1", claimed=first_claimed, go_on=go_on)
    )
    await asyncio.wait_for(first_claimed.wait(), 5)
    second = asyncio.create_task(
        create_once(pool, owner, "key-1", claimed=second_claimed, go_on=asyncio.Event())
    )
    await asyncio.sleep(HOLD)
    assert not second_claimed.is_set(), "the second claim did not wait for the first request"

    go_on.set()
    created, earlier = await asyncio.wait_for(asyncio.gather(first, second), 5)

    assert isinstance(created, Task)
    assert earlier == EarlierCreation("fingerprint", created)
    assert await count_outside(clean_database, "SELECT count(*) FROM idempotency_keys") == 1
    assert await count_outside(clean_database, "SELECT count(*) FROM tasks") == 1


async def test_a_concurrent_claim_gets_the_key_when_the_first_request_rolls_back(
    pool: AsyncConnectionPool, clean_database: str
) -> None:
    owner = await PostgresUserRepository(pool).add(a_user())
    first_claimed, second_claimed, go_on = asyncio.Event(), asyncio.Event(), asyncio.Event()
    second_may_go_on = asyncio.Event()
    second_may_go_on.set()

    first = asyncio.create_task(
        create_once(pool, owner, "key-1", claimed=first_claimed, go_on=go_on, fail=True)
    )
    await asyncio.wait_for(first_claimed.wait(), 5)
    second = asyncio.create_task(
        create_once(pool, owner, "key-1", claimed=second_claimed, go_on=second_may_go_on)
    )
    await asyncio.sleep(HOLD)
    assert not second_claimed.is_set(), "the second claim did not wait for the first request"

    go_on.set()
    failed, created = await asyncio.wait_for(
        asyncio.gather(first, second, return_exceptions=True), 5
    )

    assert isinstance(failed, RuntimeError)
    assert isinstance(created, Task)
    assert await PostgresTaskRepository(pool).get(created.id) == created
    assert await count_outside(clean_database, "SELECT count(*) FROM tasks") == 1
    assert await count_outside(clean_database, "SELECT count(*) FROM idempotency_keys") == 1
    assert await PostgresIdempotencyStore(pool).claim(
        owner.id, "key-1", "another", T0, TTL
    ) == EarlierCreation("fingerprint", created)


# --- a bounded queue for connections -----------------------------------------------------------


async def hold_through_transaction(pool: AsyncConnectionPool) -> None:
    async with transaction(pool) as connection:
        await connection.execute("SELECT 1")
        await asyncio.sleep(HOLD)


async def hold_through_unit_of_work(pool: AsyncConnectionPool) -> None:
    async with unit_of_work(pool) as work:
        await PostgresUserRepository(work).get(uuid.uuid4())
        await asyncio.sleep(HOLD)


@pytest.mark.parametrize(
    "hold",
    [hold_through_transaction, hold_through_unit_of_work],
    ids=["transaction", "unit_of_work"],
)
async def test_requests_beyond_max_waiting_are_refused_at_once_and_the_pool_recovers(
    clean_database: str, hold: Callable[[AsyncConnectionPool], Awaitable[None]]
) -> None:
    pool = create_pool(clean_database, min_size=1, max_size=1, max_waiting=1, timeout=5)
    await open_pool(pool, wait=True, timeout=5)
    try:
        started = time.monotonic()
        results = await asyncio.wait_for(
            asyncio.gather(*(hold(pool) for _ in range(5)), return_exceptions=True), 5
        )
        elapsed = time.monotonic() - started

        # One holds the connection, one waits for it, the other three are refused at once.
        refused = [r for r in results if isinstance(r, ServerBusy)]
        assert [r for r in results if r is not None and r not in refused] == []
        assert len(refused) == 3, results
        assert all(r.retry_after_seconds >= 1 for r in refused)
        assert results.count(None) == 2
        assert elapsed < 2 * HOLD + 1.5, elapsed

        # Nothing is left waiting, and the pool serves as before.
        stats = pool.get_stats()
        assert stats.get("requests_waiting", 0) == 0
        assert stats["pool_available"] == 1
        for _ in range(3):
            async with transaction(pool) as connection:
                cursor = await connection.execute("SELECT 1")
                assert await cursor.fetchone() == (1,)
        await asyncio.wait_for(hold(pool), 5)
    finally:
        await pool.close()
