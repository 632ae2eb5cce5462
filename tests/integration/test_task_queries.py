"""Every filter and sort of a task list, on the in-memory fake and on PostgreSQL alike: random
tasks, random queries, every page walked with its cursor. Both stores must answer exactly what
the domain's rules say (TaskQuery.matches, list_order), so they answer each other the same."""

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.memory import (
    FixedClock,
    InMemoryRevocationStore,
    InMemoryTaskRepository,
    InMemoryUserRepository,
)
from adapters.postgres.pool import PostgresDatabase
from adapters.postgres.tasks import PostgresTaskRepository
from application.ports import CallerTasks
from domain.due import Due
from domain.queries import TaskPosition, TaskQuery, TaskSort, list_order, position_of
from domain.tags import normalize_tags
from domain.tasks import Priority, Task, new_task
from domain.users import User
from tests.integration.support import caller_of, opened_pool

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


@dataclass
class Stores:
    memory: CallerTasks
    postgres: CallerTasks
    owner: UUID


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    # Hypothesis runs each example synchronously: the stores live on a loop of their own.
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(scope="module")
def postgres(
    loop: asyncio.AbstractEventLoop, database_url: str
) -> Iterator[tuple[PostgresDatabase, str]]:
    pool_context = opened_pool(database_url, min_size=1, max_size=2)
    pool = loop.run_until_complete(pool_context.__aenter__())
    yield PostgresDatabase(pool), database_url
    loop.run_until_complete(pool_context.__aexit__(None, None, None))


def fresh_stores(postgres: tuple[PostgresDatabase, str]) -> Stores:
    database, url = postgres
    owner = User(uuid4(), f"{uuid4()}@example.com", "h", NOW, NOW)
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(
            "INSERT INTO users (id, email, password_hash) VALUES (%s, %s, 'h')",
            (owner.id, owner.email),
        )
    users = InMemoryUserRepository([owner])
    memory = InMemoryTaskRepository(users, InMemoryRevocationStore(), FixedClock(NOW))
    caller = caller_of(owner)
    return Stores(
        memory.for_caller(caller), PostgresTaskRepository(database).for_caller(caller), owner.id
    )


def run(loop: asyncio.AbstractEventLoop, coroutine: Any) -> Any:
    return loop.run_until_complete(coroutine)


# Random tasks, with ties on purpose: few distinct created_at, titles, priorities and dues.
moments = st.integers(0, 5).map(lambda n: NOW - timedelta(hours=n))
dues = st.none() | st.builds(
    lambda day, hour, zone: Due(
        NOW.date() + timedelta(days=day), None if hour is None else time(hour), zone
    ),
    st.integers(-3, 3),
    st.none() | st.sampled_from([0, 9, 12, 23]),
    st.sampled_from(["UTC", "Asia/Tokyo", "America/New_York", "Pacific/Kiritimati"]),
)
titles = st.sampled_from(["Milk", "milk", "Buy oat milk", "Bread", "zebra", "Äpfel", "50% off"])
descriptions = st.none() | st.sampled_from(["from the shop", "Oat", "100%_sure", "back\\slash"])
tag_lists = st.lists(st.sampled_from(["work", "Work", "home", "errand", "Straße"]), max_size=3)


def a_task(owner: UUID) -> st.SearchStrategy[Task]:
    return st.builds(
        lambda title, description, completed, created, priority, due, tags: new_task(
            task_id=uuid4(),
            owner_id=owner,
            title=title,
            description=description,
            completed=completed,
            now=created,
            priority=priority,
            due=due,
            tags=normalize_tags(tags),
        ),
        titles,
        descriptions,
        st.booleans(),
        moments,
        st.sampled_from(Priority),
        dues,
        tag_lists,
    )


queries = st.builds(
    TaskQuery,
    completed=st.none() | st.booleans(),
    priorities=st.frozensets(st.sampled_from(Priority), max_size=2),
    tags=st.lists(
        st.sampled_from(["work", "HOME", "errand", "strasse", "unknown"]), max_size=2
    ).map(tuple),
    search=st.none() | st.sampled_from(["milk", "OAT milk", "%", "_", "\\", "50%", "äpfel", "x"]),
    due_after=st.none() | st.just(NOW.date() - timedelta(days=1)),
    due_before=st.none() | st.just(NOW.date() + timedelta(days=1)),
    has_due=st.none() | st.booleans(),
    overdue=st.none() | st.booleans(),
    sort=st.sampled_from(TaskSort),
    limit=st.integers(1, 4),
)


async def walk(tasks: CallerTasks, query: TaskQuery) -> tuple[list[UUID], list[int]]:
    """Every page of the list, each after the previous one's last task: the ids in order,
    and the total each page reported."""
    ids: list[UUID] = []
    totals: list[int] = []
    after: TaskPosition | None = None
    for _ in range(100):
        page = await tasks.list(replace(query, after=after), NOW)
        ids += [t.id for t in page.tasks]
        totals.append(page.total)
        after = page.next_position(query.sort)
        if after is None:
            return ids, totals
    raise AssertionError("the walk does not end")


@given(data=st.data())
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_every_query_walks_the_same_list_on_both_stores(
    loop: asyncio.AbstractEventLoop, postgres: tuple[PostgresDatabase, str], data: st.DataObject
) -> None:
    stores = fresh_stores(postgres)
    written = data.draw(st.lists(a_task(stores.owner), max_size=12))
    stored = []
    for task in written:
        kept = run(loop, stores.memory.add(task))
        assert run(loop, stores.postgres.add(task)) == kept
        stored.append(kept)

    for query in data.draw(st.lists(queries, min_size=1, max_size=4)):
        matching = [t for t in stored if query.matches(t, NOW)]
        expected = sorted(
            matching, key=lambda t: list_order(position_of(t, query.sort), query.sort)
        )
        for store in (stores.memory, stores.postgres):
            ids, totals = run(loop, walk(store, query))
            assert ids == [t.id for t in expected], (store, query)
            assert set(totals) == {len(matching)}, (store, query)


@pytest.fixture
async def stores(clean_database: str) -> AsyncIterator[Stores]:
    async with opened_pool(clean_database, min_size=1, max_size=2) as pool:
        yield fresh_stores((PostgresDatabase(pool), clean_database))


@pytest.mark.parametrize("store", ["memory", "postgres"])
async def test_a_search_treats_like_wildcards_as_characters(stores: Stores, store: str) -> None:
    tasks = getattr(stores, store)
    percent = await tasks.add(
        new_task(
            task_id=uuid4(),
            owner_id=stores.owner,
            title="50% off",
            description=None,
            completed=False,
            now=NOW,
        )
    )
    await tasks.add(
        new_task(
            task_id=uuid4(),
            owner_id=stores.owner,
            title="500 off",
            description="a_b",
            completed=False,
            now=NOW,
        )
    )
    found = await tasks.list(TaskQuery(search="0%"), NOW)
    assert [t.id for t in found.tasks] == [percent.id]
    assert (await tasks.list(TaskQuery(search="_"), NOW)).total == 1
    assert (await tasks.list(TaskQuery(search="'; DROP TABLE tasks; --"), NOW)).total == 0


def test_dates_of_dues_compare_by_their_own_date() -> None:
    # A due on the 8th in Tokyo is the 7th in UTC; due_after=8th keeps it (its own date).
    tokyo = Due(date(2026, 12, 8), time(8), "Asia/Tokyo")
    task = replace(
        new_task(
            task_id=uuid4(), owner_id=uuid4(), title="t", description=None, completed=False, now=NOW
        ),
        due=tokyo,
    )
    assert TaskQuery(due_after=date(2026, 12, 8)).matches(task, NOW)
    assert not TaskQuery(due_before=date(2026, 12, 7)).matches(task, NOW)
