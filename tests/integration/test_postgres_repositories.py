"""What only the PostgreSQL adapters can get wrong, beyond the shared contract suite: the server
session's settings and the query planner must not change what the repositories return."""

import random
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

from psycopg.conninfo import make_conninfo
from psycopg_pool import AsyncConnectionPool

from adapters.postgres.pool import PostgresDatabase
from adapters.postgres.tasks import PostgresTaskRepository
from adapters.postgres.users import PostgresUserRepository
from domain.queries import TaskQuery
from domain.tasks import new_task
from domain.users import User
from tests.integration.support import caller_of, opened_pool


def now() -> datetime:
    """When a list is read: what is overdue is decided by it."""
    return datetime.now(UTC)


T0 = datetime(2024, 5, 1, 23, 59, 59, 999999, tzinfo=UTC)


@asynccontextmanager
async def pool_with(url: str, options: str) -> AsyncIterator[AsyncConnectionPool]:
    """A pool whose every session runs with the given server options."""
    async with opened_pool(make_conninfo(url, options=options), min_size=1, max_size=1) as pool:
        yield pool


async def test_new_sessions_are_set_to_utc(clean_database: str) -> None:
    async with (
        pool_with(clean_database, "-c TimeZone=Asia/Kathmandu") as pool,
        pool.connection() as connection,
    ):
        cursor = await connection.execute("SHOW TimeZone")
        assert await cursor.fetchone() == ("UTC",)


async def test_timestamps_are_utc_whatever_the_sessions_time_zone(clean_database: str) -> None:
    # A transaction-mode pooler may hand the statements to a session in another time zone
    # than the one set when the connection was made; the adapter must not care.
    async with pool_with(clean_database, "-c TimeZone=Asia/Kathmandu") as pool:
        async with pool.connection() as connection:  # the pool's one connection
            await connection.execute("SET TIME ZONE 'Asia/Kathmandu'")
        database = PostgresDatabase(pool)
        users = PostgresUserRepository(database)
        tasks_repository = PostgresTaskRepository(database)
        user = await users.add(User(uuid.uuid4(), "tz@example.com", "h", T0, T0))
        tasks = tasks_repository.for_caller(caller_of(user))
        task = await tasks.add(
            new_task(
                task_id=uuid.uuid4(),
                owner_id=user.id,
                title="t",
                description=None,
                completed=False,
                now=T0,
            )
        )

        found_user = await users.get(user.id)
        found_task = await tasks.get(task.id)
        page = await tasks.list(TaskQuery(limit=10), now())

    assert found_user is not None
    assert found_task is not None
    for moment in (
        found_user.created_at,
        found_user.updated_at,
        found_task.created_at,
        found_task.updated_at,
        page.tasks[0].created_at,
    ):
        assert moment == T0
        assert moment.tzinfo is UTC


async def test_ties_are_ordered_by_id_in_the_query_not_by_luck_of_the_plan(
    clean_database: str,
) -> None:
    # With the (user_id, created_at DESC, id DESC) index the planner hands rows over in the
    # right order by itself; without index scans the ORDER BY alone has to break the ties.
    async with pool_with(
        clean_database, "-c enable_indexscan=off -c enable_bitmapscan=off"
    ) as pool:
        database = PostgresDatabase(pool)
        users = PostgresUserRepository(database)
        owner = await users.add(User(uuid.uuid4(), "ties@example.com", "h", T0, T0))
        tasks = PostgresTaskRepository(database).for_caller(caller_of(owner))
        tied = [
            new_task(
                task_id=uuid.uuid4(),
                owner_id=owner.id,
                title=f"tied {i}",
                description=None,
                completed=i % 2 == 0,
                now=T0 + timedelta(seconds=i % 2),
            )
            for i in range(30)
        ]
        random.Random(7).shuffle(tied)
        for task in tied:
            await tasks.add(task)

        everything = await tasks.list(
            TaskQuery(completed=None, limit=100, offset=0), datetime.now(UTC)
        )
        done = await tasks.list(TaskQuery(completed=True, limit=100, offset=0), now())
        paged = [
            t.id
            for offset in range(0, 30, 7)
            for t in (
                await tasks.list(
                    TaskQuery(completed=None, limit=7, offset=offset), datetime.now(UTC)
                )
            ).tasks
        ]

    def expected(selection: list[uuid.UUID]) -> list[uuid.UUID]:
        by_id = {t.id: t for t in tied}
        return sorted(selection, key=lambda i: (by_id[i].created_at, i), reverse=True)

    assert [t.id for t in everything.tasks] == expected([t.id for t in tied])
    assert [t.id for t in done.tasks] == expected([t.id for t in tied if t.completed])
    assert paged == expected([t.id for t in tied])
