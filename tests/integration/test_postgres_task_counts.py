"""task_counts (migrations 0004, 0006): per-user totals kept by triggers, read by every list.

The counts must stay exact whatever changes the tasks, because nothing ever recounts them; and
a list must read them, and its page through an index, however many tasks a user has. Keeping
them must cost one write of a user's counter row per statement, however many of the user's
tasks the statement changes, and none when it changes no count.
"""

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg_pool import AsyncConnectionPool

from adapters.postgres.migrations import Migrator
from adapters.postgres.pool import PostgresDatabase
from adapters.postgres.tasks import COUNT_OF, PostgresTaskRepository
from domain.queries import TaskPosition, TaskQuery
from domain.tasks import Task, new_task
from tests.integration.support import caller_of, opened_pool


def now() -> datetime:
    """When a list is read: what is overdue is decided by it."""
    return datetime.now(UTC)


T0 = datetime(2024, 5, 1, 12, 30, 45, 123456, tzinfo=UTC)
Counts = dict[uuid.UUID, tuple[int, int]]


@pytest.fixture
def db(clean_database: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(clean_database, autocommit=True) as connection:
        yield connection


def insert_user(db: psycopg.Connection, email: str) -> uuid.UUID:
    user_id = uuid.uuid4()
    db.execute(
        "INSERT INTO users (id, email, password_hash) VALUES (%s, %s, 'h')", (user_id, email)
    )
    return user_id


def insert_tasks(
    db: psycopg.Connection, user_id: uuid.UUID, count: int, *, every_nth_completed: int
) -> None:
    """`count` tasks in one statement; the 1st, (n+1)th, ... of them completed."""
    db.execute(
        """INSERT INTO tasks (id, user_id, title, completed)
           SELECT gen_random_uuid(), %(user)s, 'task ' || n, (n - 1) %% %(nth)s = 0
           FROM generate_series(1, %(count)s) AS n""",
        {"user": user_id, "count": count, "nth": every_nth_completed},
    )


def kept_counts(db: psycopg.Connection) -> Counts:
    rows = db.execute("SELECT user_id, total, completed FROM task_counts").fetchall()
    return {user_id: (total, completed) for user_id, total, completed in rows}


def real_counts(db: psycopg.Connection) -> Counts:
    rows = db.execute(
        """SELECT u.id, count(t.id), count(t.id) FILTER (WHERE t.completed)
           FROM users u LEFT JOIN tasks t ON t.user_id = u.id GROUP BY u.id"""
    ).fetchall()
    return {user_id: (total, completed) for user_id, total, completed in rows}


def assert_counts_exact(db: psycopg.Connection) -> Counts:
    """task_counts says what count(*) says, for every user; returns the real counts."""
    kept, real = kept_counts(db), real_counts(db)
    assert set(kept) <= set(real), "counts of users that do not exist"
    assert {user: kept.get(user, (0, 0)) for user in real} == real
    return real


def _task_counts_writes(db: psycopg.Connection) -> tuple[int, int]:
    row = db.execute(
        """SELECT n_tup_ins, n_tup_upd FROM pg_stat_xact_user_tables
           WHERE relname = 'task_counts'"""
    ).fetchone()
    assert row is not None
    return row[0], row[1]


@contextmanager
def counter_writes(db: psycopg.Connection) -> Iterator[Callable[[], tuple[int, int]]]:
    """Runs the block in one transaction; the function says how many task_counts rows the block
    has inserted and updated so far. (pg_stat_xact_user_tables counts from the session's last
    report of statistics, which may lie a few transactions back, hence the difference.)"""
    with db.transaction():
        inserted, updated = _task_counts_writes(db)

        def written() -> tuple[int, int]:
            now_inserted, now_updated = _task_counts_writes(db)
            return now_inserted - inserted, now_updated - updated

        yield written


def counter_versions(db: psycopg.Connection) -> dict[uuid.UUID, str]:
    """The transaction that wrote each counter row last: rewriting a row changes it."""
    rows = db.execute("SELECT user_id, xmin::text FROM task_counts").fetchall()
    return {user_id: version for user_id, version in rows}


# --- exact counts ------------------------------------------------------------------------------


def test_counts_follow_inserts_completed_toggles_moves_and_deletes(db: psycopg.Connection) -> None:
    alice = insert_user(db, "alice@example.com")
    bob = insert_user(db, "bob@example.com")
    carol = insert_user(db, "carol@example.com")
    assert assert_counts_exact(db) == {alice: (0, 0), bob: (0, 0), carol: (0, 0)}

    insert_tasks(db, alice, 7, every_nth_completed=3)  # tasks 1, 4, 7 completed
    insert_tasks(db, bob, 50, every_nth_completed=5)
    assert assert_counts_exact(db) == {alice: (7, 3), bob: (50, 10), carol: (0, 0)}

    db.execute("UPDATE tasks SET completed = NOT completed WHERE user_id = %s", (alice,))
    db.execute("UPDATE tasks SET completed = true WHERE user_id = %s", (bob,))
    assert assert_counts_exact(db) == {alice: (7, 4), bob: (50, 50), carol: (0, 0)}

    # Writes that leave completed as it was change no count.
    db.execute("UPDATE tasks SET completed = completed, title = 'same' WHERE user_id = %s", (bob,))
    db.execute("UPDATE tasks SET description = 'd' WHERE user_id = %s", (alice,))
    assert assert_counts_exact(db) == {alice: (7, 4), bob: (50, 50), carol: (0, 0)}

    # A task moved to another user (one completed, one not) counts for its new owner only.
    db.execute(
        """UPDATE tasks SET user_id = %(carol)s WHERE id IN (
               (SELECT id FROM tasks WHERE user_id = %(alice)s AND completed LIMIT 1)
               UNION ALL
               (SELECT id FROM tasks WHERE user_id = %(alice)s AND NOT completed LIMIT 1))""",
        {"alice": alice, "carol": carol},
    )
    # Moved and toggled in one statement.
    db.execute(
        """UPDATE tasks SET user_id = %(alice)s, completed = false WHERE id IN (
               SELECT id FROM tasks WHERE user_id = %(bob)s LIMIT 5)""",
        {"alice": alice, "bob": bob},
    )
    assert assert_counts_exact(db) == {alice: (10, 3), bob: (45, 45), carol: (2, 1)}

    db.execute(
        "DELETE FROM tasks WHERE id IN (SELECT id FROM tasks WHERE user_id = %s LIMIT 20)", (bob,)
    )
    db.execute("DELETE FROM tasks WHERE user_id = %s AND completed", (alice,))
    db.execute("DELETE FROM tasks WHERE user_id = %s", (carol,))
    assert assert_counts_exact(db) == {alice: (7, 0), bob: (25, 25), carol: (0, 0)}


def test_a_rolled_back_transaction_leaves_the_counts_as_they_were(clean_database: str) -> None:
    with psycopg.connect(clean_database) as connection:
        alice = insert_user(connection, "alice@example.com")
        insert_tasks(connection, alice, 4, every_nth_completed=2)
        connection.commit()

        insert_tasks(connection, alice, 10, every_nth_completed=1)
        connection.execute("DELETE FROM tasks WHERE user_id = %s AND NOT completed", (alice,))
        assert assert_counts_exact(connection)[alice] == (12, 12)  # seen inside the transaction
        connection.rollback()

        assert assert_counts_exact(connection) == {alice: (4, 2)}


def test_deleting_a_user_deletes_their_counts_and_no_one_elses(db: psycopg.Connection) -> None:
    alice = insert_user(db, "alice@example.com")
    bob = insert_user(db, "bob@example.com")
    insert_tasks(db, alice, 30, every_nth_completed=2)
    insert_tasks(db, bob, 12, every_nth_completed=4)

    db.execute("DELETE FROM users WHERE id = %s", (alice,))

    assert alice not in kept_counts(db)
    assert assert_counts_exact(db) == {bob: (12, 3)}
    assert kept_counts(db) == {bob: (12, 3)}


def test_truncating_tasks_resets_every_count(db: psycopg.Connection) -> None:
    alice = insert_user(db, "alice@example.com")
    bob = insert_user(db, "bob@example.com")
    insert_tasks(db, alice, 30, every_nth_completed=2)
    insert_tasks(db, bob, 12, every_nth_completed=4)

    db.execute("TRUNCATE tasks")

    assert assert_counts_exact(db) == {alice: (0, 0), bob: (0, 0)}
    # Counting starts again from nothing, not from what the truncated tasks left.
    insert_tasks(db, bob, 3, every_nth_completed=3)
    assert assert_counts_exact(db) == {alice: (0, 0), bob: (3, 1)}


# --- one counter write per statement and user (migration 0006) ---------------------------------

BULK = 20_000


def test_a_bulk_insert_writes_the_users_counter_row_once_however_many_tasks(
    db: psycopg.Connection,
) -> None:
    # A trigger per row rewrote the row once per task, each time stepping over the dead
    # versions the earlier ones left: 20 000 tasks in one INSERT took ~3 s, and the time grew
    # with the square of their number.
    alice = insert_user(db, "alice@example.com")  # no counter row yet
    bob = insert_user(db, "bob@example.com")
    insert_tasks(db, bob, 3, every_nth_completed=1)

    with counter_writes(db) as written:
        insert_tasks(db, alice, BULK, every_nth_completed=4)
        assert written() == (1, 0)
    assert assert_counts_exact(db) == {alice: (BULK, BULK // 4), bob: (3, 3)}

    # Tasks of two users in one statement: one write each, to rows that exist.
    with counter_writes(db) as written:
        db.execute(
            """INSERT INTO tasks (id, user_id, title, completed)
               SELECT gen_random_uuid(), CASE WHEN n %% 2 = 0 THEN %(alice)s ELSE %(bob)s END,
                      'task ' || n, n %% 3 = 0
               FROM generate_series(1, 2000) AS n""",
            {"alice": alice, "bob": bob},
        )
        assert written() == (0, 2)
    assert assert_counts_exact(db) == {alice: (BULK + 1000, BULK // 4 + 333), bob: (1003, 336)}


def test_updates_that_change_no_count_leave_the_counter_rows_untouched(
    db: psycopg.Connection,
) -> None:
    alice = insert_user(db, "alice@example.com")
    bob = insert_user(db, "bob@example.com")
    insert_tasks(db, alice, 10, every_nth_completed=2)  # 1, 3, 5, 7, 9 completed
    insert_tasks(db, bob, 10, every_nth_completed=3)  # 1, 4, 7, 10 completed
    before = counter_versions(db)
    assert set(before) == {alice, bob}

    # What the application sends for a title-only edit: every column, completed as it was.
    row = db.execute(
        "SELECT id, completed FROM tasks WHERE user_id = %s AND title = 'task 3'", (alice,)
    ).fetchone()
    assert row is not None
    db.execute(
        "UPDATE tasks SET title = 'new', description = 'd', completed = %s WHERE id = %s",
        (row[1], row[0]),
    )
    # The same for many tasks of both users at once.
    db.execute(
        "UPDATE tasks SET title = 'same', completed = completed WHERE user_id IN (%s, %s)",
        (alice, bob),
    )
    # Changes that cancel out within one statement: one task done and one undone, and two
    # open tasks trading owners.
    db.execute(
        """UPDATE tasks SET completed = NOT completed WHERE id IN (
               (SELECT id FROM tasks WHERE user_id = %(alice)s AND completed LIMIT 1)
               UNION ALL
               (SELECT id FROM tasks WHERE user_id = %(alice)s AND NOT completed LIMIT 1))""",
        {"alice": alice},
    )
    db.execute(
        """UPDATE tasks SET user_id = CASE user_id WHEN %(alice)s THEN %(bob)s ELSE %(alice)s END
           WHERE id IN (
               (SELECT id FROM tasks WHERE user_id = %(alice)s AND NOT completed LIMIT 1)
               UNION ALL
               (SELECT id FROM tasks WHERE user_id = %(bob)s AND NOT completed LIMIT 1))""",
        {"alice": alice, "bob": bob},
    )
    db.execute("UPDATE tasks SET completed = true WHERE false")

    assert counter_versions(db) == before
    assert assert_counts_exact(db) == {alice: (10, 5), bob: (10, 4)}

    # A change of a count does rewrite that user's row, and only that one.
    db.execute(
        """UPDATE tasks SET completed = false
           WHERE id = (SELECT id FROM tasks WHERE user_id = %s AND completed LIMIT 1)""",
        (alice,),
    )
    after = counter_versions(db)
    assert after[alice] != before[alice]
    assert after[bob] == before[bob]
    assert assert_counts_exact(db) == {alice: (10, 4), bob: (10, 4)}


def test_one_update_moving_and_toggling_tasks_of_several_users_writes_each_row_once(
    db: psycopg.Connection,
) -> None:
    alice = insert_user(db, "alice@example.com")
    bob = insert_user(db, "bob@example.com")
    carol = insert_user(db, "carol@example.com")
    dave = insert_user(db, "dave@example.com")  # no tasks, so no counter row
    erin = insert_user(db, "erin@example.com")  # looks on
    insert_tasks(db, alice, 10, every_nth_completed=2)
    insert_tasks(db, bob, 20, every_nth_completed=4)
    insert_tasks(db, carol, 30, every_nth_completed=3)
    insert_tasks(db, erin, 5, every_nth_completed=1)
    erins = counter_versions(db)[erin]

    with counter_writes(db) as written:
        # The odd-numbered tasks go round alice -> bob -> carol -> alice, alice's tasks 2 and
        # 4 (open) to dave; every third task of them is toggled; carol's get new ids.
        db.execute(
            """UPDATE tasks SET
                   user_id = CASE
                       WHEN user_id = %(alice)s AND title IN ('task 2', 'task 4') THEN %(dave)s
                       WHEN user_id = %(alice)s THEN %(bob)s
                       WHEN user_id = %(bob)s THEN %(carol)s
                       ELSE %(alice)s END,
                   completed = completed <> (split_part(title, ' ', 2)::int %% 3 = 0),
                   id = CASE WHEN user_id = %(carol)s THEN gen_random_uuid() ELSE id END
               WHERE user_id IN (%(alice)s, %(bob)s, %(carol)s)
                 AND (split_part(title, ' ', 2)::int %% 2 = 1
                      OR (user_id = %(alice)s AND title IN ('task 2', 'task 4')))""",
            {"alice": alice, "bob": bob, "carol": carol, "dave": dave},
        )
        assert written() == (1, 3)  # dave's row created, three updated

    counts = assert_counts_exact(db)
    assert counts[dave] == (2, 0)
    assert counts[erin] == (5, 5)
    assert counter_versions(db)[erin] == erins
    assert counts[alice][0] + counts[bob][0] + counts[carol][0] == 10 + 20 + 30 - 2


def test_one_delete_of_many_tasks_of_several_users_writes_each_row_once(
    db: psycopg.Connection,
) -> None:
    alice = insert_user(db, "alice@example.com")
    bob = insert_user(db, "bob@example.com")
    carol = insert_user(db, "carol@example.com")
    erin = insert_user(db, "erin@example.com")  # looks on
    insert_tasks(db, alice, 400, every_nth_completed=2)
    insert_tasks(db, bob, 300, every_nth_completed=3)
    insert_tasks(db, carol, 200, every_nth_completed=4)
    insert_tasks(db, erin, 100, every_nth_completed=5)
    erins = counter_versions(db)[erin]

    with counter_writes(db) as written:
        db.execute(
            """DELETE FROM tasks WHERE user_id = %(carol)s
                  OR (user_id IN (%(alice)s, %(bob)s)
                      AND split_part(title, ' ', 2)::int %% 3 <> 0)""",
            {"alice": alice, "bob": bob, "carol": carol},
        )
        assert written() == (0, 3)

    # Left: tasks 3, 6, 9, ... of alice (completed when odd) and of bob (none completed).
    assert assert_counts_exact(db) == {
        alice: (133, 67),
        bob: (100, 0),
        carol: (0, 0),
        erin: (100, 20),
    }
    assert counter_versions(db)[erin] == erins


# --- concurrent writers ------------------------------------------------------------------------


@pytest.fixture
async def pool(clean_database: str) -> AsyncIterator[AsyncConnectionPool]:
    async with opened_pool(clean_database, min_size=10, max_size=10, open_timeout=10) as pool:
        yield pool


def a_task(owner_id: uuid.UUID, n: int, *, completed: bool) -> Task:
    return new_task(
        task_id=uuid.uuid4(),
        owner_id=owner_id,
        title=f"task {n}",
        description=None,
        completed=completed,
        now=T0 + timedelta(seconds=n),
    )


async def test_counts_stay_exact_under_concurrent_inserts_deletes_and_toggles_of_one_user(
    pool: AsyncConnectionPool, db: psycopg.Connection
) -> None:
    alice = insert_user(db, "alice@example.com")  # no task_counts row yet
    tasks = PostgresTaskRepository(PostgresDatabase(pool)).for_caller(caller_of(alice))

    # Twenty first tasks at once: each insert may be the one that creates the row.
    first = await asyncio.gather(
        *(tasks.add(a_task(alice, n, completed=n % 3 == 0)) for n in range(20)),
        return_exceptions=True,
    )
    created = [task for task in first if isinstance(task, Task)]
    assert len(created) == 20, first
    assert assert_counts_exact(db) == {alice: (20, 7)}

    added = [a_task(alice, n, completed=n % 2 == 0) for n in range(20, 27)]  # 4 completed
    deleted, toggled = created[:7], created[7:13]  # 3 completed deleted; 2 of 6 completed
    writes: list[Awaitable[object]] = [
        *(tasks.add(task) for task in added),
        *(tasks.delete(task.id) for task in deleted),
        *(tasks.update(replace(task, completed=not task.completed)) for task in toggled),
    ]
    results = await asyncio.gather(*writes, return_exceptions=True)

    assert all(isinstance(result, Task) or result is True for result in results), results
    # 20 + 7 - 7 tasks; completed: 7 + 4 - 3 - 2 + 4.
    assert assert_counts_exact(db) == {alice: (20, 10)}
    page = await tasks.list(TaskQuery(completed=None, limit=1), now())
    done = await tasks.list(TaskQuery(completed=True, limit=1), now())
    open_ = await tasks.list(TaskQuery(completed=False, limit=1), now())
    assert (page.total, done.total, open_.total) == (20, 10, 10)


def test_concurrent_statements_over_the_same_users_in_opposite_orders_neither_deadlock_nor_miscount(
    clean_database: str, db: psycopg.Connection
) -> None:
    # Each statement changes the counts of all four users; half the writers list them one way
    # round, half the other. Counter rows written in whatever order the rows come could lock
    # one user's row, then wait for another's that a concurrent statement locked first.
    users = [insert_user(db, f"user{n}@example.com") for n in range(4)]
    writers, rounds = 6, 15

    def write(writer: int) -> None:
        order = users if writer % 2 == 0 else users[::-1]
        title = f"writer {writer}"
        with psycopg.connect(clean_database, autocommit=True) as connection:
            for n in range(rounds):
                # 1, 2, 3 and 4 tasks for the users in this writer's order.
                connection.execute(
                    """INSERT INTO tasks (id, user_id, title, completed)
                       SELECT gen_random_uuid(), owner, %(title)s, (k + %(n)s) %% 2 = 0
                       FROM unnest(%(order)s::uuid[]) WITH ORDINALITY AS o(owner, k),
                            generate_series(1, k::int)""",
                    {"order": order, "title": title, "n": n},
                )
                # The writer's tasks move on to the next user in its order, some toggled.
                connection.execute(
                    """UPDATE tasks
                       SET user_id = (%(next)s::uuid[])[array_position(%(order)s::uuid[], user_id)],
                           completed = completed <> (random() < 0.5)
                       WHERE title = %(title)s""",
                    {"order": order, "next": order[1:] + order[:1], "title": title},
                )
                connection.execute(
                    "DELETE FROM tasks WHERE title = %s AND random() < 0.3", (title,)
                )

    with ThreadPoolExecutor(max_workers=writers) as executor:
        results = [executor.submit(write, writer) for writer in range(writers)]
        failures = [result.exception() for result in results if result.exception()]

    assert failures == []
    counts = assert_counts_exact(db)
    assert sum(total for total, _ in counts.values()) > 0


# --- plans with thousands of tasks -------------------------------------------------------------

MANY = 5_000


@dataclass(frozen=True, slots=True)
class Crowded:
    url: str
    owner: uuid.UUID


@pytest.fixture(scope="module")
def crowded(create_database: Callable[[], str]) -> Crowded:
    """A database of its own, only read by the tests using it: a user with 5 000 tasks (every
    third completed, created in pairs at the same moment) among nine others with 500 each,
    analysed."""
    url = create_database()
    Migrator(url).apply()
    with psycopg.connect(url, autocommit=True) as db:
        owner = insert_user(db, "busy@example.com")
        for n in range(9):
            insert_tasks(db, insert_user(db, f"user{n}@example.com"), 500, every_nth_completed=2)
        db.execute(
            """INSERT INTO tasks (id, user_id, title, completed, created_at)
               SELECT gen_random_uuid(), %s, 'task ' || n, n %% 3 = 0,
                      %s - (n / 2) * interval '1 second'
               FROM generate_series(1, %s) AS n""",
            (owner, T0, MANY),
        )
        db.execute("ANALYZE tasks")
        db.execute("ANALYZE task_counts")
        assert assert_counts_exact(db)[owner] == (MANY, MANY // 3)
    return Crowded(url, owner)


@asynccontextmanager
async def explained(url: str) -> AsyncIterator[tuple[AsyncConnectionPool, list[str]]]:
    """A one-connection pool whose every statement's executed plan (EXPLAIN ANALYZE, by the
    server's auto_explain module) is collected in the list, as the repositories run them."""
    options = (
        "-c session_preload_libraries=auto_explain -c auto_explain.log_min_duration=0"
        " -c auto_explain.log_analyze=on -c auto_explain.log_level=notice"
        " -c client_min_messages=notice"
    )
    plans: list[str] = []
    async with opened_pool(make_conninfo(url, options=options), min_size=1, max_size=1) as pool:
        async with pool.connection() as connection:
            connection.add_notice_handler(lambda notice: plans.append(notice.message_primary))
            await connection.execute("SELECT 'auto_explain is on'")
        assert any("auto_explain is on" in plan for plan in plans), plans
        plans.clear()
        yield pool, plans


def plans_reading(plans: list[str], table: str) -> list[str]:
    pattern = re.compile(rf"^Query Text: .*?\bFROM {table}\b", re.MULTILINE | re.DOTALL)
    return [plan for plan in plans if pattern.search(plan)]


def newest_first(
    db: psycopg.Connection, owner: uuid.UUID, completed: bool | None
) -> list[tuple[uuid.UUID, datetime]]:
    """The ids and creation times of the owner's tasks that match, in list order."""
    condition = (
        sql.SQL("") if completed is None else sql.SQL("AND completed = {}").format(completed)
    )
    rows = db.execute(
        sql.SQL(
            "SELECT id, created_at FROM tasks WHERE user_id = %s {} "
            "ORDER BY created_at DESC, id DESC"
        ).format(condition),
        (owner,),
    ).fetchall()
    return [(task_id, created_at) for task_id, created_at in rows]


@pytest.mark.parametrize("completed", [None, True, False], ids=["all", "done", "open"])
async def test_the_total_of_a_list_is_read_from_task_counts_not_counted_from_tasks(
    crowded: Crowded, completed: bool | None
) -> None:
    with psycopg.connect(crowded.url) as db:
        expected = len(newest_first(db, crowded.owner, completed))
        plan = "\n".join(
            row[0]
            for row in db.execute(
                sql.SQL("EXPLAIN {}").format(COUNT_OF[completed]),
                {"caller_id": crowded.owner},
            ).fetchall()
        )
    assert expected == {None: MANY, True: MANY // 3, False: MANY - MANY // 3}[completed]

    # The count statement the repository holds reads one row of task_counts...
    assert "task_counts" in plan, plan
    assert not re.search(r"\bon tasks\b", plan), plan

    # ...and what the repository really runs for a list: one statement, whose page reads no
    # more of tasks than the page and one more row, and whose total comes from task_counts.
    async with explained(crowded.url) as (pool, plans):
        page = await (
            PostgresTaskRepository(PostgresDatabase(pool))
            .for_caller(caller_of(crowded.owner))
            .list(TaskQuery(completed=completed, limit=20), now())
        )

    assert page.total == expected
    (plan,) = plans
    assert re.search(r"\bon task_counts\b", plan), plan
    assert "Aggregate" not in plan, plan
    _, rows_read = scan_of_tasks(plan)
    assert rows_read == 21, plan


def scan_of_tasks(plan: str) -> tuple[str, int]:
    """The line of the plan that reads tasks, and how many rows it actually returned."""
    (line,) = [line for line in plan.splitlines() if re.search(r"\bon tasks\b", line)]
    rows = re.search(r"actual (?:time=\S+ )?rows=(\d+)", line)
    assert rows is not None, line
    return line, int(rows.group(1))


@pytest.mark.parametrize("completed", [None, True, False], ids=["all", "done", "open"])
async def test_a_keyset_page_deep_inside_5000_tasks_is_read_from_the_index_at_the_position(
    crowded: Crowded, completed: bool | None
) -> None:
    with psycopg.connect(crowded.url) as db:
        order = newest_first(db, crowded.owner, completed)
    depth = len(order) * 4 // 5
    task_id, created_at = order[depth]
    limit = 20

    async with explained(crowded.url) as (pool, plans):
        page = await (
            PostgresTaskRepository(PostgresDatabase(pool))
            .for_caller(caller_of(crowded.owner))
            .list(
                TaskQuery(
                    completed=completed, limit=limit, after=TaskPosition(created_at, task_id)
                ),
                datetime.now(UTC),
            )
        )

    assert [t.id for t in page.tasks] == [i for i, _ in order[depth + 1 : depth + 1 + limit]]
    assert page.has_more
    (plan,) = plans_reading(plans, "tasks")
    line, rows_read = scan_of_tasks(plan)
    assert "Index Scan using tasks_user_" in line, plan
    if completed is not None:
        assert "tasks_user_completed_created_idx" in line, plan
    # The condition of that scan (the total's read of task_counts has one of its own).
    below_scan = plan.splitlines()[plan.splitlines().index(line) + 1 :]
    index_cond = next((text for text in below_scan if text.strip().startswith("Index Cond:")), "")
    assert "ROW(created_at, id) < ROW(" in index_cond, plan
    # Sorted once more only after the join with the caller's verdict, which promises no
    # order: over the page's rows, never over the tasks before it.
    sorts = re.findall(r"^\s*(?:->\s*)?Sort .*actual (?:time=\S+ )?rows=(\d+)", plan, re.MULTILINE)
    assert all(int(rows) <= limit + 1 for rows in sorts), plan
    # As cheap deep down as on top: the scan starts at the position and reads one page and one
    # more row, not the thousands before it.
    assert rows_read == limit + 1, plan
