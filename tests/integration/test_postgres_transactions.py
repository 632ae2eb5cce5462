"""adapters/postgres/pool.py beyond one statement: PostgresDatabase's calls outside and inside
atomic() blocks, two requests racing for one Idempotency-Key, and a pool that refuses to queue
more than max_waiting requests."""

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, suppress
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import psycopg
import pytest
from psycopg.pq import TransactionStatus
from psycopg_pool import AsyncConnectionPool

from adapters.postgres.idempotency import PostgresIdempotencyStore
from adapters.postgres.pool import PostgresDatabase, create_pool, open_pool
from adapters.postgres.tasks import PostgresTaskRepository
from adapters.postgres.users import PostgresUserRepository
from adapters.system import RandomIds, SystemClock
from application.errors import ServerBusy
from application.ports import Caller, EarlierCreation
from application.tasks import TaskService
from domain.errors import EmailAlreadyRegistered
from domain.queries import TaskQuery
from domain.tasks import Task, TaskChanges, new_task
from domain.users import User
from tests.integration.support import Background, caller_of, opened_pool


def now() -> datetime:
    """When a list is read: what is overdue is decided by it."""
    return datetime.now(UTC)


T0 = datetime(2024, 5, 1, 12, 30, 45, 123456, tzinfo=UTC)
TTL = timedelta(hours=24)
HOLD = 0.3  # seconds a connection is held by the tests that make others wait for it
R = TypeVar("R")


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


async def backend_and_transaction(database: PostgresDatabase) -> tuple[int, int]:
    """The server process and the transaction id of a call made through the database."""
    async with database.connection() as connection:
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


def pool_rollbacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What psycopg_pool said when it had to end a transaction left open on a connection given
    back to it (it rolls it back, warning): the sign of a call that does not commit."""
    return [
        record.getMessage()
        for record in caplog.records
        if record.name.startswith("psycopg.pool") and record.levelno >= logging.WARNING
    ]


# --- outside atomic(): each call on its own ----------------------------------------------------


async def test_outside_a_block_each_call_borrows_a_connection_and_commits_before_returning(
    pool: AsyncConnectionPool,
    database: PostgresDatabase,
    clean_database: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    users, tasks = PostgresUserRepository(database), PostgresTaskRepository(database)
    idempotency = PostgresIdempotencyStore(database)
    requests, idle = taken(pool)
    assert idle == 2

    user = await users.add(a_user())
    # Committed as the call returns: another connection sees it at once...
    assert await count_outside(clean_database, "SELECT count(*) FROM users") == 1
    # ...and the connection is back in the pool, with no transaction left open on it.
    assert taken(pool) == (requests + 1, 2)

    task = await tasks.for_caller(caller_of(user)).add(a_task(user))
    assert await count_outside(clean_database, "SELECT count(*) FROM tasks") == 1
    assert await idempotency.claim(user.id, "key-1", "fingerprint", T0, TTL) is None  # 2 statements
    assert await count_outside(clean_database, "SELECT count(*) FROM idempotency_keys") == 1
    assert taken(pool) == (requests + 3, 2)

    async with database.connection() as connection:
        assert connection.autocommit
        await connection.execute("SELECT 1")
        assert connection.info.transaction_status == TransactionStatus.IDLE

    assert await tasks.for_caller(caller_of(user)).get(task.id) == task
    assert pool_rollbacks(caplog) == []


async def test_outside_a_block_two_calls_never_share_a_transaction(
    database: PostgresDatabase,
) -> None:
    first = await backend_and_transaction(database)
    second = await backend_and_transaction(database)
    third = await backend_and_transaction(database)

    assert len({first[1], second[1], third[1]}) == 3


async def test_outside_a_block_a_failed_call_leaves_the_earlier_ones_and_the_connection_alone(
    pool: AsyncConnectionPool, database: PostgresDatabase, clean_database: str
) -> None:
    users = PostgresUserRepository(database)
    first = await users.add(a_user("taken@example.com"))

    with pytest.raises(EmailAlreadyRegistered):
        await users.add(a_user("taken@example.com"))

    assert await users.get(first.id) == first
    assert await count_outside(clean_database, "SELECT count(*) FROM users") == 1
    for attempt in range(3):  # the connections serve on, not stuck in a failed transaction
        await users.add(a_user(f"attempt{attempt}@example.com"))
    assert await count_outside(clean_database, "SELECT count(*) FROM users") == 4
    assert taken(pool)[1] == 2


# --- atomic(): one connection, one transaction -------------------------------------------------


async def test_every_call_in_an_atomic_block_shares_one_connection_and_one_transaction(
    pool: AsyncConnectionPool,
    database: PostgresDatabase,
    clean_database: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    user, other_user = a_user("alice@example.com"), a_user("bob@example.com")
    users, tasks = PostgresUserRepository(database), PostgresTaskRepository(database)
    other_database = PostgresDatabase(pool)  # another request's: no block of its own
    requests, _ = taken(pool)

    async with database.atomic():
        first = await backend_and_transaction(database)
        await users.add(user)
        task = await tasks.for_caller(caller_of(user)).add(a_task(user))
        second = await backend_and_transaction(database)

        # Each call sees what the earlier ones wrote...
        assert await users.get(user.id) == user
        page = await tasks.for_caller(caller_of(user)).list(TaskQuery(limit=10), now())
        assert ([t.id for t in page.tasks], page.total) == ([task.id], 1)
        # ...which no other transaction sees before the commit.
        assert await count_outside(clean_database, "SELECT count(*) FROM users") == 0
        assert await count_outside(clean_database, "SELECT count(*) FROM tasks") == 0
        # One connection taken from the pool for the whole block, the other one left to
        # serve other work meanwhile.
        assert taken(pool) == (requests + 1, 1)
        await PostgresUserRepository(other_database).add(other_user)
        assert await count_outside(clean_database, "SELECT count(*) FROM users") == 1

    assert first == second
    assert taken(pool) == (requests + 2, 2)
    assert await count_outside(clean_database, "SELECT count(*) FROM users") == 2
    assert (
        await count_outside(clean_database, "SELECT count(*) FROM tasks WHERE id = %s", task.id)
        == 1
    )
    assert await tasks.for_caller(caller_of(user)).get(task.id) == task
    assert pool_rollbacks(caplog) == []


async def test_an_atomic_block_that_raises_rolls_back_every_call_and_gives_the_connection_back(
    pool: AsyncConnectionPool,
    database: PostgresDatabase,
    clean_database: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    user = a_user()
    users, tasks = PostgresUserRepository(database), PostgresTaskRepository(database)
    requests, _ = taken(pool)

    with pytest.raises(RuntimeError, match="after the writes"):  # passed through untouched
        async with database.atomic():
            await users.add(user)
            await tasks.for_caller(caller_of(user)).add(a_task(user))
            raise RuntimeError("after the writes")

    assert taken(pool) == (requests + 1, 2)
    assert pool_rollbacks(caplog) == []  # the block rolled back, not the pool
    for table in ("users", "tasks", "task_counts"):
        assert await count_outside(clean_database, f"SELECT count(*) FROM {table}") == 0, table
    # The connections came back usable, not stuck in the failed transaction.
    for attempt in range(3):
        async with database.atomic():
            assert await users.get(user.id) is None
            await users.add(a_user(f"attempt{attempt}@example.com"))
    assert await count_outside(clean_database, "SELECT count(*) FROM users") == 3


async def test_a_failed_statement_in_an_atomic_block_undoes_the_calls_before_it(
    pool: AsyncConnectionPool, database: PostgresDatabase, clean_database: str
) -> None:
    users, tasks = PostgresUserRepository(database), PostgresTaskRepository(database)
    taken_email = await users.add(a_user("taken@example.com"))
    newcomer = a_user("new@example.com")

    with pytest.raises(EmailAlreadyRegistered):
        async with database.atomic():
            await users.add(newcomer)
            await tasks.for_caller(caller_of(newcomer)).add(a_task(newcomer))
            await users.add(a_user(taken_email.email))

    assert await users.get(newcomer.id) is None
    assert await count_outside(clean_database, "SELECT count(*) FROM users") == 1
    assert await count_outside(clean_database, "SELECT count(*) FROM tasks") == 0
    assert taken(pool)[1] == 2


async def test_a_nested_atomic_block_is_a_savepoint_whose_failure_undoes_only_its_own_calls(
    pool: AsyncConnectionPool, database: PostgresDatabase, clean_database: str
) -> None:
    users, tasks = PostgresUserRepository(database), PostgresTaskRepository(database)
    await users.add(a_user("taken@example.com"))
    kept, dropped, after = a_user("kept@example.com"), a_user("dropped@example.com"), a_user()
    requests, _ = taken(pool)

    async with database.atomic():
        outer = await backend_and_transaction(database)
        await users.add(kept)
        with pytest.raises(EmailAlreadyRegistered):
            async with database.atomic():
                assert await backend_and_transaction(database) == outer
                await users.add(dropped)
                await tasks.for_caller(caller_of(dropped)).add(a_task(dropped))
                await users.add(a_user("taken@example.com"))  # fails: the savepoint is undone
        # The outer transaction goes on, on its connection, with its own work intact.
        assert await backend_and_transaction(database) == outer
        assert await users.get(kept.id) == kept
        assert await users.get(dropped.id) is None
        await users.add(after)
        # A nested block that succeeds is kept with the outer one.
        async with database.atomic():
            nested_task = await tasks.for_caller(caller_of(after)).add(a_task(after))
        assert await count_outside(clean_database, "SELECT count(*) FROM users") == 1

    assert taken(pool) == (requests + 1, 2)
    emails = await count_outside(
        clean_database,
        "SELECT count(*) FROM users WHERE email = ANY(%s)",
        ["taken@example.com", "kept@example.com", after.email],
    )
    assert emails == 3
    assert await count_outside(clean_database, "SELECT count(*) FROM users") == 3
    assert await tasks.for_caller(caller_of(after)).get(nested_task.id) == nested_task
    assert await count_outside(clean_database, "SELECT count(*) FROM tasks") == 1


async def test_a_nested_block_that_raises_inside_an_outer_one_that_fails_undoes_everything(
    database: PostgresDatabase, clean_database: str
) -> None:
    users = PostgresUserRepository(database)

    with pytest.raises(RuntimeError, match="outer"):
        async with database.atomic():
            await users.add(a_user("outer@example.com"))
            async with database.atomic():
                await users.add(a_user("inner@example.com"))
            raise RuntimeError("outer fails after its nested block succeeded")

    assert await count_outside(clean_database, "SELECT count(*) FROM users") == 0


async def test_concurrent_tasks_in_atomic_blocks_of_their_own_never_share_a_connection(
    pool: AsyncConnectionPool, database: PostgresDatabase, clean_database: str
) -> None:
    users = PostgresUserRepository(database)
    alice, bob = a_user("alice@example.com"), a_user("bob@example.com")
    wrote = {alice.id: asyncio.Event(), bob.id: asyncio.Event()}
    read = {alice.id: asyncio.Event(), bob.id: asyncio.Event()}

    async def in_a_block(
        me: User, other: User
    ) -> tuple[tuple[int, int], tuple[int, int], bool, bool]:
        async with database.atomic():
            before = await backend_and_transaction(database)
            await users.add(me)
            wrote[me.id].set()
            await wrote[other.id].wait()  # the other block has written and not committed
            sees_mine = await users.get(me.id) == me
            sees_other = await users.get(other.id) is not None
            after = await backend_and_transaction(database)
            read[me.id].set()
            await read[other.id].wait()  # neither commits before both have looked
        return before, after, sees_mine, sees_other

    alices, bobs = await asyncio.wait_for(
        asyncio.gather(in_a_block(alice, bob), in_a_block(bob, alice)), 5
    )

    for before, after, sees_mine, sees_other in (alices, bobs):
        assert before == after
        assert sees_mine
        assert not sees_other
    assert alices[0][0] != bobs[0][0], "both blocks ran on one backend"
    assert alices[0][1] != bobs[0][1], "both blocks ran in one transaction"
    assert await count_outside(clean_database, "SELECT count(*) FROM users") == 2
    assert taken(pool)[1] == 2


@pytest.mark.parametrize("raises", [False, True], ids=["block-commits", "block-raises"])
async def test_a_call_right_after_an_atomic_block_borrows_a_pooled_connection_of_its_own(
    pool: AsyncConnectionPool, database: PostgresDatabase, clean_database: str, raises: bool
) -> None:
    users = PostgresUserRepository(database)
    with suppress(RuntimeError):
        async with database.atomic():
            _, inside = await backend_and_transaction(database)
            if raises:
                raise RuntimeError("the block fails")
    requests, idle = taken(pool)
    assert idle == 2

    _, outside = await backend_and_transaction(database)
    await users.add(a_user())

    # Two borrowings from the pool, not the block's connection kept aside...
    assert taken(pool) == (requests + 2, 2)
    # ...each call in a transaction of its own, committed as it returns.
    assert outside != inside
    assert await count_outside(clean_database, "SELECT count(*) FROM users") == 1


async def test_a_task_started_in_an_atomic_block_borrows_a_connection_of_its_own(
    pool: AsyncConnectionPool, database: PostgresDatabase, clean_database: str
) -> None:
    users = PostgresUserRepository(database)
    go = asyncio.Event()

    async def later() -> tuple[int, int]:
        await go.wait()
        await users.add(a_user("later@example.com"))
        return await backend_and_transaction(database)

    async with database.atomic():
        block = await backend_and_transaction(database)
        child = asyncio.create_task(later())  # inherits the block's context
        await asyncio.sleep(0)
    requests = taken(pool)[0]
    go.set()
    childs = await asyncio.wait_for(child, 5)

    # The child's calls borrowed from the pool, each in its own committed transaction, and not
    # through the block's connection, which the pool had taken back (and might have lent).
    assert taken(pool)[0] == requests + 2
    assert childs[1] != block[1]
    assert await count_outside(clean_database, "SELECT count(*) FROM users") == 1


# --- two requests with one Idempotency-Key -----------------------------------------------------


async def create_once(
    database: PostgresDatabase,
    owner: User,
    key: str,
    *,
    claimed: asyncio.Event,
    go_on: asyncio.Event,
    fail: bool = False,
) -> Task | EarlierCreation:
    """What creating a task under an Idempotency-Key does, in one atomic block; pauses between
    its claim and its creation until told to go on."""
    store, tasks = PostgresIdempotencyStore(database), PostgresTaskRepository(database)
    async with database.atomic():
        earlier = await store.claim(owner.id, key, "fingerprint", T0, TTL)
        claimed.set()
        if earlier is not None:
            return earlier
        await go_on.wait()
        created = await tasks.for_caller(caller_of(owner)).add(
            a_task(owner, f"created under {key}")
        )
        await store.record(owner.id, key, created)
        if fail:
            raise RuntimeError("the first request fails after its claim")
        return created


async def test_a_concurrent_claim_of_the_same_key_waits_for_the_first_and_gets_its_task(
    database: PostgresDatabase, clean_database: str, background: Background
) -> None:
    owner = await PostgresUserRepository(database).add(a_user())
    first_claimed, second_claimed, go_on = asyncio.Event(), asyncio.Event(), asyncio.Event()

    first = background.start(
        create_once(database, owner, "key-1", claimed=first_claimed, go_on=go_on)
    )
    await asyncio.wait_for(first_claimed.wait(), 5)
    second = background.start(
        create_once(database, owner, "key-1", claimed=second_claimed, go_on=asyncio.Event())
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
    database: PostgresDatabase, clean_database: str, background: Background
) -> None:
    owner = await PostgresUserRepository(database).add(a_user())
    first_claimed, second_claimed, go_on = asyncio.Event(), asyncio.Event(), asyncio.Event()
    second_may_go_on = asyncio.Event()
    second_may_go_on.set()

    first = background.start(
        create_once(database, owner, "key-1", claimed=first_claimed, go_on=go_on, fail=True)
    )
    await asyncio.wait_for(first_claimed.wait(), 5)
    second = background.start(
        create_once(database, owner, "key-1", claimed=second_claimed, go_on=second_may_go_on)
    )
    await asyncio.sleep(HOLD)
    assert not second_claimed.is_set(), "the second claim did not wait for the first request"

    go_on.set()
    failed, created = await asyncio.wait_for(
        asyncio.gather(first, second, return_exceptions=True), 5
    )

    assert isinstance(failed, RuntimeError)
    assert isinstance(created, Task)
    assert (
        await PostgresTaskRepository(database).for_caller(caller_of(owner)).get(created.id)
        == created
    )
    assert await count_outside(clean_database, "SELECT count(*) FROM tasks") == 1
    assert await count_outside(clean_database, "SELECT count(*) FROM idempotency_keys") == 1
    assert await PostgresIdempotencyStore(database).claim(
        owner.id, "key-1", "another", T0, TTL
    ) == EarlierCreation("fingerprint", created)


# --- a bounded queue for connections -----------------------------------------------------------


async def hold_through_a_call(database: PostgresDatabase) -> None:
    async with database.connection() as connection:
        await connection.execute("SELECT 1")
        await asyncio.sleep(HOLD)


async def hold_through_an_atomic_block(database: PostgresDatabase) -> None:
    async with database.atomic():
        await PostgresUserRepository(database).get(uuid.uuid4())
        await asyncio.sleep(HOLD)


@pytest.mark.parametrize(
    "hold",
    [hold_through_a_call, hold_through_an_atomic_block],
    ids=["call", "atomic"],
)
async def test_requests_beyond_max_waiting_are_refused_at_once_and_the_pool_recovers(
    clean_database: str, hold: Callable[[PostgresDatabase], Awaitable[None]]
) -> None:
    pool = create_pool(clean_database, min_size=1, max_size=1, max_waiting=1, timeout=5)
    await open_pool(pool, wait=True, timeout=5)
    database = PostgresDatabase(pool)
    try:
        started = time.monotonic()
        results = await asyncio.wait_for(
            asyncio.gather(*(hold(database) for _ in range(5)), return_exceptions=True), 5
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
            async with database.connection() as connection:
                cursor = await connection.execute("SELECT 1")
                assert await cursor.fetchone() == (1,)
        await asyncio.wait_for(hold(database), 5)
    finally:
        await pool.close()


# --- task updates racing on PostgreSQL -----------------------------------------------------------


class CountedTransactions:
    """The database's atomic blocks, counted: how often an update took its locked path."""

    def __init__(self, database: PostgresDatabase) -> None:
        self._database = database
        self.blocks = 0

    def atomic(self) -> AbstractAsyncContextManager[None]:
        self.blocks += 1
        return self._database.atomic()

    async def atomically(self, work: Callable[[], Awaitable[R]]) -> R:
        self.blocks += 1
        return await self._database.atomically(work)


async def test_concurrent_partial_updates_of_one_task_lose_no_field_and_only_races_take_locks(
    clean_database: str,
) -> None:
    async with opened_pool(clean_database, min_size=4, max_size=4) as pool:
        database = PostgresDatabase(pool)
        transactions = CountedTransactions(database)
        service = TaskService(
            tasks=PostgresTaskRepository(database),
            idempotency=PostgresIdempotencyStore(database),
            transactions=transactions,
            clock=SystemClock(),
            ids=RandomIds(),
        )
        owner = await PostgresUserRepository(database).add(a_user())
        as_owner = Caller(owner.id, None, T0, owner.token_generation)
        task = await service.create(as_owner, title="first")

        for n in range(5):  # one at a time: never a race, never a lock
            await service.update(as_owner, task.id, TaskChanges(title=f"alone {n}"))
        assert transactions.blocks == 0

        rounds, lost = 40, 0
        for n in range(rounds):
            await asyncio.gather(
                service.update(as_owner, task.id, TaskChanges(title=f"title {n}")),
                service.update(as_owner, task.id, TaskChanges(description=f"description {n}")),
                service.update(as_owner, task.id, TaskChanges(completed=n % 2 == 0)),
            )
            final = await service.get(as_owner, task.id)
            lost += (final.title, final.description, final.completed) != (
                f"title {n}",
                f"description {n}",
                n % 2 == 0,
            )

    assert lost == 0
    assert transactions.blocks > 0, "the updates never raced: the test proves nothing"
