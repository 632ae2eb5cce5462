"""What the schema itself guarantees, whatever code writes to it: plain SQL through psycopg."""

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg import errors, sql


@pytest.fixture
def db(clean_database: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(clean_database, autocommit=True) as connection:
        yield connection


def insert_user(db: psycopg.Connection, email: str = "alice@example.com") -> uuid.UUID:
    user_id = uuid.uuid4()
    db.execute(
        "INSERT INTO users (id, email, password_hash) VALUES (%s, %s, 'hash')", (user_id, email)
    )
    return user_id


def insert_task(
    db: psycopg.Connection,
    user_id: uuid.UUID,
    title: str = "Buy milk",
    description: str | None = None,
    *,
    updated_at: datetime | None = None,
) -> uuid.UUID:
    task_id = uuid.uuid4()
    db.execute(
        """INSERT INTO tasks (id, user_id, title, description, updated_at)
           VALUES (%s, %s, %s, %s, coalesce(%s, now()))""",
        (task_id, user_id, title, description, updated_at),
    )
    return task_id


def count(db: psycopg.Connection, query: str, params: tuple[object, ...] = ()) -> int:
    row = db.execute(query, params).fetchone()
    assert row is not None
    return int(row[0])


# --- foreign key -------------------------------------------------------------------------------


def test_deleting_a_user_cascades_to_their_tasks_only(db: psycopg.Connection) -> None:
    alice = insert_user(db, "alice@example.com")
    bob = insert_user(db, "bob@example.com")
    for i in range(3):
        insert_task(db, alice, f"alice {i}")
    bobs = insert_task(db, bob, "bob's")

    db.execute("DELETE FROM users WHERE id = %s", (alice,))

    assert count(db, "SELECT count(*) FROM tasks WHERE user_id = %s", (alice,)) == 0
    assert count(db, "SELECT count(*) FROM tasks WHERE id = %s", (bobs,)) == 1


def test_a_task_needs_an_existing_user(db: psycopg.Connection) -> None:
    with pytest.raises(errors.ForeignKeyViolation):
        insert_task(db, uuid.uuid4())


# --- updated_at trigger ------------------------------------------------------------------------


def test_updated_at_moves_strictly_forward_within_one_transaction(clean_database: str) -> None:
    with psycopg.connect(clean_database) as connection:  # one transaction until commit
        user = insert_user(connection)
        task = insert_task(connection, user)
        moments = []
        for title in ("one", "two", "three"):
            row = connection.execute(
                "UPDATE tasks SET title = %s WHERE id = %s RETURNING updated_at, now()",
                (title, task),
            ).fetchone()
            assert row is not None
            moments.append(row)
        connection.commit()

    stamps = [updated_at for updated_at, _ in moments]
    # now() is the transaction's start and constant: the trigger must not rely on it.
    assert len({transaction_start for _, transaction_start in moments}) == 1
    assert stamps[0] < stamps[1] < stamps[2]


def test_updated_at_moves_forward_even_when_stored_ahead_of_the_clock(
    db: psycopg.Connection,
) -> None:
    future = datetime(2100, 1, 1, tzinfo=UTC)
    user = insert_user(db)
    task = insert_task(db, user, updated_at=future)

    row = db.execute(
        "UPDATE tasks SET completed = true WHERE id = %s RETURNING updated_at", (task,)
    ).fetchone()

    assert row is not None
    assert row[0] == future + timedelta(microseconds=1)


def test_an_update_cannot_set_updated_at_backwards(db: psycopg.Connection) -> None:
    user = insert_user(db)
    task = insert_task(db, user)
    before = db.execute("SELECT updated_at FROM tasks WHERE id = %s", (task,)).fetchone()
    assert before is not None

    row = db.execute(
        "UPDATE tasks SET updated_at = '2000-01-01T00:00:00Z' WHERE id = %s RETURNING updated_at",
        (task,),
    ).fetchone()

    assert row is not None
    assert row[0] > before[0]


def test_updating_a_user_moves_their_updated_at_forward(db: psycopg.Connection) -> None:
    user = insert_user(db)
    before = db.execute("SELECT updated_at FROM users WHERE id = %s", (user,)).fetchone()
    assert before is not None

    row = db.execute(
        "UPDATE users SET password_hash = 'other' WHERE id = %s RETURNING updated_at", (user,)
    ).fetchone()

    assert row is not None
    assert row[0] > before[0]


def test_created_at_defaults_to_the_insertion_time(db: psycopg.Connection) -> None:
    user = insert_user(db)
    task = insert_task(db, user)

    row = db.execute(
        "SELECT created_at, now() - created_at FROM tasks WHERE id = %s", (task,)
    ).fetchone()

    assert row is not None
    assert row[0] is not None
    assert timedelta(0) <= row[1] < timedelta(minutes=1)


# --- CHECK constraints -------------------------------------------------------------------------


def test_titles_of_1_to_200_characters_in_any_script_are_accepted(db: psycopg.Connection) -> None:
    user = insert_user(db)

    insert_task(db, user, "x")
    insert_task(db, user, "x" * 200)
    insert_task(db, user, "é" * 200)  # 400 bytes: the limit counts characters
    insert_task(db, user, "🎉" * 200)

    assert count(db, "SELECT count(*) FROM tasks") == 4


def test_a_201_character_title_is_rejected(db: psycopg.Connection) -> None:
    user = insert_user(db)

    with pytest.raises((errors.CheckViolation, errors.StringDataRightTruncation)):
        insert_task(db, user, "x" * 201)
    assert count(db, "SELECT count(*) FROM tasks") == 0


@pytest.mark.parametrize("title", ["", " ", "    "], ids=["empty", "space", "spaces"])
def test_a_blank_title_is_rejected(db: psycopg.Connection, title: str) -> None:
    user = insert_user(db)

    with pytest.raises(errors.CheckViolation):
        insert_task(db, user, title)


def test_a_title_of_only_tabs_and_newlines_is_rejected(db: psycopg.Connection) -> None:
    # Blank means empty once surrounding whitespace is trimmed (str.strip() in the domain), and
    # tabs and newlines are whitespace: the schema must not accept what the domain calls blank.
    user = insert_user(db)

    for title in ("\t", "\n", " \t\r\n "):
        with pytest.raises(errors.CheckViolation):
            insert_task(db, user, title)
    assert count(db, "SELECT count(*) FROM tasks") == 0


def test_descriptions_of_up_to_10000_characters_are_accepted(db: psycopg.Connection) -> None:
    user = insert_user(db)

    insert_task(db, user, description="d" * 10_000)
    insert_task(db, user, description="ж" * 10_000)
    insert_task(db, user, description="")
    insert_task(db, user, description=None)

    assert count(db, "SELECT count(*) FROM tasks") == 4


def test_a_10001_character_description_is_rejected(db: psycopg.Connection) -> None:
    user = insert_user(db)

    with pytest.raises(errors.CheckViolation):
        insert_task(db, user, description="d" * 10_001)


def test_a_title_cannot_be_updated_to_blank(db: psycopg.Connection) -> None:
    user = insert_user(db)
    task = insert_task(db, user)

    with pytest.raises(errors.CheckViolation):
        db.execute("UPDATE tasks SET title = '  ' WHERE id = %s", (task,))


def test_an_empty_email_is_rejected(db: psycopg.Connection) -> None:
    with pytest.raises(errors.CheckViolation):
        insert_user(db, "")


# --- unique email ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("alice@example.com", "alice@example.com"),
        ("alice@example.com", "Alice@Example.COM"),
        ("ALICE@EXAMPLE.COM", "alice@example.com"),
    ],
)
def test_emails_are_unique_regardless_of_case(
    db: psycopg.Connection, first: str, second: str
) -> None:
    insert_user(db, first)

    with pytest.raises(errors.UniqueViolation):
        insert_user(db, second)
    assert count(db, "SELECT count(*) FROM users") == 1


# --- indexes -----------------------------------------------------------------------------------

_SELECT = "SELECT id, user_id, title, description, completed, created_at, updated_at FROM tasks"
_ORDER = "ORDER BY created_at DESC, id DESC LIMIT 20"
# The page statements PostgresCallerTasks.list sends, one per filter.
LIST_QUERIES = {
    "all": f"{_SELECT} WHERE user_id = %(user)s {_ORDER}",
    "done": f"{_SELECT} WHERE user_id = %(user)s AND completed = %(done)s {_ORDER}",
    "open": f"{_SELECT} WHERE user_id = %(user)s AND completed = %(open)s {_ORDER}",
}
COUNT_QUERIES = {
    "all": "SELECT count(*) FROM tasks WHERE user_id = %(user)s",
    "done": "SELECT count(*) FROM tasks WHERE user_id = %(user)s AND completed = %(done)s",
}


@pytest.fixture
def many_tasks(db: psycopg.Connection) -> uuid.UUID:
    """Thousands of tasks over twenty users, analysed; returns one of the users."""
    users = [insert_user(db, f"user{i}@example.com") for i in range(20)]
    db.execute(
        """INSERT INTO tasks (id, user_id, title, completed, created_at)
           SELECT gen_random_uuid(), u.id, 'task ' || n, n % 3 = 0,
                  now() - n * interval '1 minute'
           FROM users u CROSS JOIN generate_series(1, 200) AS n"""
    )
    db.execute("ANALYZE tasks")
    db.execute("ANALYZE users")
    assert count(db, "SELECT count(*) FROM tasks") == 4000
    return users[7]


def plan_of(db: psycopg.Connection, query: str, user: uuid.UUID) -> str:
    params = {"user": user, "done": True, "open": False}
    rows = db.execute(sql.SQL("EXPLAIN {}").format(sql.SQL(query)), params).fetchall()
    return "\n".join(row[0] for row in rows)


@pytest.mark.parametrize("query", LIST_QUERIES.values(), ids=LIST_QUERIES.keys())
def test_listing_one_users_tasks_reads_an_index_in_order(
    db: psycopg.Connection, many_tasks: uuid.UUID, query: str
) -> None:
    plan = plan_of(db, query, many_tasks)

    assert "Seq Scan" not in plan, plan
    assert "tasks_user_" in plan, plan
    # The index already yields created_at DESC, id DESC: no sort of the user's rows.
    assert "Sort" not in plan, plan


def test_listing_uses_the_index_that_includes_completed_when_filtering(
    db: psycopg.Connection, many_tasks: uuid.UUID
) -> None:
    plan = plan_of(db, LIST_QUERIES["done"], many_tasks)

    assert "tasks_user_completed_created_idx" in plan, plan


def test_counting_one_users_tasks_does_not_scan_the_table(
    db: psycopg.Connection, many_tasks: uuid.UUID
) -> None:
    for query in COUNT_QUERIES.values():
        plan = plan_of(db, query, many_tasks)
        assert "Seq Scan" not in plan, plan
        assert "tasks_user_" in plan, plan
