"""Applying and rolling back the migrations in migrations/ on fresh databases.

The list of migrations is read from the folder, the way the Migrator reads it, so that adding a
migration does not break these tests. What each migration adds is checked twice: generically,
by comparing the whole schema after every rollback step with the schema as it was before that
migration was applied; and concretely, for the migrations known here, table by table.
"""

import shutil
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from yoyo import read_migrations

from adapters.postgres.migrations import MIGRATIONS_DIR, Migrator
from application.errors import StorageUnavailable

# Every migration in migrations/, in the order yoyo applies them.
ALL = [m.id for m in read_migrations(str(MIGRATIONS_DIR))]

USERS_AND_TASKS = "0001.users-and-tasks"
REVOKED_TOKENS = "0002.revoked-tokens"
LOGIN_THROTTLING = "0003.login-throttling-and-token-cutoff"
TASK_COUNTS = "0004.task-counts"
IDEMPOTENCY_KEYS = "0005.idempotency-keys"
TASK_COUNTS_PER_STATEMENT = "0006.task-counts-per-statement"
TOKEN_GENERATIONS = "0007.token-generations"
LINKED_IDENTITIES = "0008.linked-identities"
PERIODIC_JOBS = "0009.periodic-jobs"
ORGANISING_TASKS = "0010.organising-tasks"
# The tables each known migration creates; later migrations add their own.
TABLES_OF = {
    USERS_AND_TASKS: {"users", "tasks"},
    REVOKED_TOKENS: {"revoked_tokens"},
    LOGIN_THROTTLING: {"login_failures", "auth_attempts"},
    TASK_COUNTS: {"task_counts"},
    IDEMPOTENCY_KEYS: {"idempotency_keys"},
    TASK_COUNTS_PER_STATEMENT: set(),
    TOKEN_GENERATIONS: set(),
    LINKED_IDENTITIES: {"linked_identities"},
    PERIODIC_JOBS: {"periodic_jobs"},
    ORGANISING_TASKS: {"tags"},
}
KNOWN_TABLES = set().union(*TABLES_OF.values())
USER_COLUMNS_OF_0001 = {"id", "email", "password_hash", "created_at", "updated_at"}

Schema = dict[str, frozenset[tuple[str, ...]]]


def _is_yoyos(table: str) -> bool:
    return table.startswith(("_yoyo", "yoyo"))


def app_tables(url: str) -> set[str]:
    """The tables in the public schema that are not yoyo's own bookkeeping."""
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            """SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"""
        ).fetchall()
    return {name for (name,) in rows if not _is_yoyos(name)}


def columns_of(url: str, table: str) -> set[str]:
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            """SELECT column_name FROM information_schema.columns
               WHERE table_schema = 'public' AND table_name = %s""",
            (table,),
        ).fetchall()
    return {name for (name,) in rows}


def app_functions(url: str) -> set[str]:
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            """SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
               WHERE n.nspname = 'public'"""
        ).fetchall()
    return {name for (name,) in rows}


def schema(url: str) -> Schema:
    """Everything the migrations create in the public schema, yoyo's own tables left out."""
    queries = {
        "tables": """SELECT table_name FROM information_schema.tables
                     WHERE table_schema = 'public'""",
        "columns": """SELECT table_name, column_name, data_type, is_nullable,
                             coalesce(column_default, '')
                      FROM information_schema.columns WHERE table_schema = 'public'""",
        "indexes": """SELECT tablename, indexname, indexdef FROM pg_indexes
                      WHERE schemaname = 'public'""",
        "constraints": """SELECT c.conrelid::regclass::text, c.conname,
                                 pg_get_constraintdef(c.oid)
                          FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
                          WHERE n.nspname = 'public'""",
        "triggers": """SELECT t.tgrelid::regclass::text, t.tgname, pg_get_triggerdef(t.oid)
                       FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
                       JOIN pg_namespace n ON n.oid = c.relnamespace
                       WHERE n.nspname = 'public' AND NOT t.tgisinternal""",
        # With their source: a rollback must restore a replaced function as it was.
        "functions": """SELECT p.proname, pg_get_function_identity_arguments(p.oid), p.prosrc
                        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                        WHERE n.nspname = 'public'""",
    }
    with psycopg.connect(url) as connection:
        return {
            kind: frozenset(
                tuple(str(value) for value in row)
                for row in connection.execute(query).fetchall()
                if kind == "functions" or not _is_yoyos(str(row[0]))
            )
            for kind, query in queries.items()
        }


def applied(migrator: Migrator) -> dict[str, bool]:
    return {status.id: status.applied for status in migrator.status()}


def only_first(count: int) -> dict[str, bool]:
    return {m: i < count for i, m in enumerate(ALL)}


def directory_with_the_first(count: int, parent: Path) -> Path:
    """A copy of migrations/ holding only the oldest `count` migrations, with their rollbacks."""
    directory = parent / f"first-{count}"
    directory.mkdir()
    for migration in ALL[:count]:
        for name in (f"{migration}.sql", f"{migration}.rollback.sql"):
            shutil.copy(MIGRATIONS_DIR / name, directory / name)
    return directory


@pytest.fixture(scope="module")
def schema_after(
    create_database: Callable[[], str], tmp_path_factory: pytest.TempPathFactory
) -> list[Schema]:
    """schema_after[n]: the schema once the oldest n migrations are applied, one at a time."""
    url = create_database()
    parent = tmp_path_factory.mktemp("migrations")
    schemas = [schema(url)]
    for count in range(1, len(ALL) + 1):
        assert Migrator(url, directory_with_the_first(count, parent)).apply() == [ALL[count - 1]]
        schemas.append(schema(url))
    return schemas


@pytest.fixture
def fresh_url(create_database: Callable[[], str]) -> str:
    return create_database()


def insert_user(connection: psycopg.Connection, user_id: uuid.UUID) -> None:
    connection.execute(
        "INSERT INTO users (id, email, password_hash) VALUES (%s, 'a@x.io', 'h')", (user_id,)
    )


def insert_task(connection: psycopg.Connection, task_id: uuid.UUID, user_id: uuid.UUID) -> None:
    connection.execute(
        "INSERT INTO tasks (id, user_id, title) VALUES (%s, %s, 'kept')", (task_id, user_id)
    )


def user_and_task(url: str, user_id: uuid.UUID, task_id: uuid.UUID) -> tuple[object, ...]:
    with psycopg.connect(url) as connection:
        row = connection.execute(
            """SELECT u.email, u.password_hash, t.title FROM users u
               JOIN tasks t ON t.user_id = u.id WHERE u.id = %s AND t.id = %s""",
            (user_id, task_id),
        ).fetchone()
    assert row is not None
    return tuple(row)


def triggers_on_tasks(url: str) -> set[str]:
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = 'tasks'::regclass AND NOT tgisinternal"
        ).fetchall()
    return {name for (name,) in rows}


def task_counts_of(url: str) -> dict[uuid.UUID, tuple[int, int]]:
    with psycopg.connect(url) as connection:
        rows = connection.execute("SELECT user_id, total, completed FROM task_counts").fetchall()
    return {user_id: (total, completed) for user_id, total, completed in rows}


def real_task_counts(url: str) -> dict[uuid.UUID, tuple[int, int]]:
    """What count(*) says, for the users that have tasks."""
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            """SELECT user_id, count(*), count(*) FILTER (WHERE completed)
               FROM tasks GROUP BY user_id"""
        ).fetchall()
    return {user_id: (total, completed) for user_id, total, completed in rows}


def insert_tasks_of(
    connection: psycopg.Connection, email: str, *, completed: int, open_: int
) -> uuid.UUID:
    """A user with `completed` completed and `open_` open tasks; returns the user."""
    user_id = uuid.uuid4()
    connection.execute(
        "INSERT INTO users (id, email, password_hash) VALUES (%s, %s, 'h')", (user_id, email)
    )
    connection.execute(
        """INSERT INTO tasks (id, user_id, title, completed)
           SELECT gen_random_uuid(), %(user)s, 'task ' || n, n <= %(completed)s
           FROM generate_series(1, %(completed)s + %(open)s) AS n""",
        {"user": user_id, "completed": completed, "open": open_},
    )
    return user_id


# --- the migrations in the folder --------------------------------------------------------------


def test_the_migrations_are_found_oldest_first_each_with_its_rollback() -> None:
    stems = sorted(p.stem for p in MIGRATIONS_DIR.glob("*.sql") if not p.stem.endswith("rollback"))

    assert stems == ALL
    assert ALL[:9] == [
        USERS_AND_TASKS,
        REVOKED_TOKENS,
        LOGIN_THROTTLING,
        TASK_COUNTS,
        IDEMPOTENCY_KEYS,
        TASK_COUNTS_PER_STATEMENT,
        TOKEN_GENERATIONS,
        LINKED_IDENTITIES,
        PERIODIC_JOBS,
    ]
    for migration in ALL:
        assert (MIGRATIONS_DIR / f"{migration}.rollback.sql").is_file(), migration


def test_each_known_migration_creates_exactly_its_tables(schema_after: list[Schema]) -> None:
    assert all(not objects for objects in schema_after[0].values())
    for migration, tables in TABLES_OF.items():
        step = ALL.index(migration) + 1
        new_tables = {t for (t,) in schema_after[step]["tables"] - schema_after[step - 1]["tables"]}
        assert new_tables == tables, migration


def test_the_login_throttling_migration_adds_the_token_cutoff_to_users(
    schema_after: list[Schema],
) -> None:
    step = ALL.index(LOGIN_THROTTLING) + 1
    added = schema_after[step]["columns"] - schema_after[step - 1]["columns"]

    assert ("users", "tokens_valid_after", "timestamp with time zone", "YES", "") in added
    assert {column[0] for column in added} == {"users", "login_failures", "auth_attempts"}


def test_the_token_generations_migration_gives_every_user_generation_zero(
    schema_after: list[Schema],
) -> None:
    step = ALL.index(TOKEN_GENERATIONS) + 1
    added = schema_after[step]["columns"] - schema_after[step - 1]["columns"]

    assert added == {("users", "token_generation", "bigint", "NO", "0")}


def test_the_linked_identities_migration_lets_an_account_have_no_password(
    schema_after: list[Schema],
) -> None:
    step = ALL.index(LINKED_IDENTITIES) + 1
    before = {c for c in schema_after[step - 1]["columns"] if c[:2] == ("users", "password_hash")}
    after = {c for c in schema_after[step]["columns"] if c[:2] == ("users", "password_hash")}

    assert [c[3] for c in before] == ["NO"]
    assert [c[3] for c in after] == ["YES"]


def test_the_task_counts_migration_adds_its_counting_triggers_and_functions(
    schema_after: list[Schema],
) -> None:
    step = ALL.index(TASK_COUNTS) + 1
    triggers = schema_after[step]["triggers"] - schema_after[step - 1]["triggers"]
    functions = schema_after[step]["functions"] - schema_after[step - 1]["functions"]

    assert {(table, name) for table, name, _ in triggers} == {
        ("tasks", "tasks_count"),
        ("tasks", "tasks_truncate_counts"),
    }
    assert {name for name, *_ in functions} == {"count_tasks", "forget_task_counts"}


def test_the_per_statement_migration_replaces_the_row_trigger_with_three_statement_triggers(
    schema_after: list[Schema],
) -> None:
    step = ALL.index(TASK_COUNTS_PER_STATEMENT) + 1
    before, after = schema_after[step - 1], schema_after[step]

    assert {name for _, name, _ in before["triggers"] - after["triggers"]} == {"tasks_count"}
    added = {name: definition for _, name, definition in after["triggers"] - before["triggers"]}
    assert set(added) == {"tasks_count_inserts", "tasks_count_updates", "tasks_count_deletes"}
    assert all(
        "FOR EACH STATEMENT" in definition and "REFERENCING" in definition
        for definition in added.values()
    ), added
    assert "AFTER INSERT ON public.tasks REFERENCING NEW TABLE" in added["tasks_count_inserts"]
    assert "AFTER UPDATE ON public.tasks REFERENCING OLD TABLE" in added["tasks_count_updates"]
    assert "NEW TABLE" in added["tasks_count_updates"]
    assert "AFTER DELETE ON public.tasks REFERENCING OLD TABLE" in added["tasks_count_deletes"]
    assert {name for name, *_ in before["functions"] - after["functions"]} == {"count_tasks"}
    assert {name for name, *_ in after["functions"] - before["functions"]} == {
        "count_inserted_tasks",
        "count_updated_tasks",
        "count_deleted_tasks",
    }
    # TRUNCATE is still counted by 0004's statement trigger.
    assert "tasks_truncate_counts" in {name for _, name, _ in after["triggers"]}


# --- applying ----------------------------------------------------------------------------------


def test_a_fresh_database_has_everything_pending(fresh_url: str) -> None:
    assert applied(Migrator(fresh_url)) == dict.fromkeys(ALL, False)
    assert app_tables(fresh_url) == set()


def test_apply_runs_every_migration_in_order_and_status_shows_them_applied(
    fresh_url: str, schema_after: list[Schema]
) -> None:
    migrator = Migrator(fresh_url)

    assert migrator.apply() == ALL

    assert applied(migrator) == dict.fromkeys(ALL, True)
    assert app_tables(fresh_url) >= KNOWN_TABLES
    assert "tokens_valid_after" in columns_of(fresh_url, "users")
    assert "update_updated_at_column" in app_functions(fresh_url)
    # All at once gives the same schema as one migration at a time.
    assert schema(fresh_url) == schema_after[-1]


def test_apply_is_idempotent(fresh_url: str, schema_after: list[Schema]) -> None:
    migrator = Migrator(fresh_url)
    migrator.apply()

    assert migrator.apply() == []
    assert Migrator(fresh_url).apply() == []
    assert applied(migrator) == dict.fromkeys(ALL, True)
    assert schema(fresh_url) == schema_after[-1]


def test_processes_racing_to_apply_apply_each_migration_exactly_once(
    fresh_url: str, schema_after: list[Schema]
) -> None:
    # Several server workers start at once, each applying pending migrations.
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda _: Migrator(fresh_url).apply(), range(3)))

    assert sorted(m for result in results for m in result) == ALL
    assert applied(Migrator(fresh_url)) == dict.fromkeys(ALL, True)
    assert schema(fresh_url) == schema_after[-1]


# --- rolling back ------------------------------------------------------------------------------


def test_each_rollback_step_restores_exactly_the_schema_from_before_its_migration(
    fresh_url: str, schema_after: list[Schema]
) -> None:
    migrator = Migrator(fresh_url)
    migrator.apply()

    for step in reversed(range(len(ALL))):
        assert migrator.rollback() == [ALL[step]]
        assert schema(fresh_url) == schema_after[step], ALL[step]
        assert applied(migrator) == only_first(step)

    assert migrator.rollback() == []
    assert migrator.apply() == ALL
    assert schema(fresh_url) == schema_after[-1]


def test_rolling_back_every_step_leaves_nothing_and_reapplying_restores_it(
    fresh_url: str, schema_after: list[Schema]
) -> None:
    migrator = Migrator(fresh_url)
    migrator.apply()

    assert migrator.rollback(steps=len(ALL)) == list(reversed(ALL))

    assert app_tables(fresh_url) == set()
    assert "update_updated_at_column" not in app_functions(fresh_url)
    assert all(not objects for objects in schema(fresh_url).values())
    assert applied(migrator) == dict.fromkeys(ALL, False)
    assert migrator.rollback(steps=1) == []

    assert migrator.apply() == ALL
    assert schema(fresh_url) == schema_after[-1]
    assert applied(migrator) == dict.fromkeys(ALL, True)


def test_rolling_back_one_step_undoes_only_the_newest_migration(
    fresh_url: str, schema_after: list[Schema]
) -> None:
    migrator = Migrator(fresh_url)
    migrator.apply()

    assert migrator.rollback() == ALL[-1:]

    assert applied(migrator) == only_first(len(ALL) - 1)
    assert schema(fresh_url) == schema_after[-2]
    assert migrator.apply() == ALL[-1:]
    assert applied(migrator) == dict.fromkeys(ALL, True)
    assert schema(fresh_url) == schema_after[-1]


def test_rolling_back_the_login_throttling_migration_removes_its_tables_and_column(
    fresh_url: str,
) -> None:
    migrator = Migrator(fresh_url)
    migrator.apply()
    user_id, task_id = uuid.uuid4(), uuid.uuid4()
    with psycopg.connect(fresh_url) as connection:
        insert_user(connection, user_id)
        insert_task(connection, task_id, user_id)
        connection.execute("UPDATE users SET tokens_valid_after = now() WHERE id = %s", (user_id,))
        connection.execute("INSERT INTO revoked_tokens VALUES ('kept', now())")
        connection.execute("INSERT INTO login_failures VALUES ('k', 3, now())")
        connection.execute("INSERT INTO auth_attempts VALUES ('10.0.0.1', now(), 7)")
    position = ALL.index(LOGIN_THROTTLING)

    # Down to the migration before it: this one and every later one are undone.
    assert migrator.rollback(steps=len(ALL) - position) == list(reversed(ALL[position:]))

    assert applied(migrator) == only_first(position)
    assert app_tables(fresh_url) == {"users", "tasks", "revoked_tokens"}
    assert columns_of(fresh_url, "users") == USER_COLUMNS_OF_0001
    assert user_and_task(fresh_url, user_id, task_id) == ("a@x.io", "h", "kept")
    with psycopg.connect(fresh_url) as connection:
        assert connection.execute("SELECT token_key FROM revoked_tokens").fetchall() == [("kept",)]

    assert migrator.apply() == ALL[position:]
    assert app_tables(fresh_url) >= KNOWN_TABLES
    with psycopg.connect(fresh_url) as connection:
        row = connection.execute(
            "SELECT tokens_valid_after FROM users WHERE id = %s", (user_id,)
        ).fetchone()
        assert row == (None,)
        assert connection.execute("SELECT count(*) FROM login_failures").fetchone() == (0,)
        assert connection.execute("SELECT count(*) FROM auth_attempts").fetchone() == (0,)


def test_rolling_back_to_the_first_migration_drops_revoked_tokens_and_keeps_the_data(
    fresh_url: str,
) -> None:
    migrator = Migrator(fresh_url)
    migrator.apply()
    user_id, task_id = uuid.uuid4(), uuid.uuid4()
    with psycopg.connect(fresh_url) as connection:
        insert_user(connection, user_id)
        insert_task(connection, task_id, user_id)

    assert migrator.rollback(steps=len(ALL) - 1) == list(reversed(ALL[1:]))

    assert app_tables(fresh_url) == TABLES_OF[USERS_AND_TASKS]
    assert columns_of(fresh_url, "users") == USER_COLUMNS_OF_0001
    assert applied(migrator) == only_first(1)
    assert user_and_task(fresh_url, user_id, task_id) == ("a@x.io", "h", "kept")

    assert migrator.apply() == ALL[1:]
    assert app_tables(fresh_url) >= KNOWN_TABLES
    assert user_and_task(fresh_url, user_id, task_id) == ("a@x.io", "h", "kept")


def test_the_schema_works_after_a_full_round_trip(fresh_url: str) -> None:
    migrator = Migrator(fresh_url)
    migrator.apply()
    migrator.rollback(steps=len(ALL))
    migrator.apply()

    cutoff = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
    with psycopg.connect(fresh_url) as connection:
        user_id = uuid.uuid4()
        insert_user(connection, user_id)
        insert_task(connection, uuid.uuid4(), user_id)
        connection.execute("INSERT INTO revoked_tokens VALUES ('k', now())")
        connection.execute("INSERT INTO login_failures VALUES ('k', 1, now())")
        connection.execute("INSERT INTO auth_attempts VALUES ('10.0.0.1', now(), 1)")
        row = connection.execute(
            "UPDATE users SET tokens_valid_after = %s WHERE id = %s RETURNING tokens_valid_after",
            (cutoff, user_id),
        ).fetchone()
        assert row == (cutoff,)
        with pytest.raises(psycopg.errors.UniqueViolation), connection.transaction():
            insert_user(connection, uuid.uuid4())
        with pytest.raises(psycopg.errors.UniqueViolation), connection.transaction():
            connection.execute("INSERT INTO auth_attempts VALUES ('10.0.0.1', %s, 1)", (cutoff,))
            connection.execute("INSERT INTO auth_attempts VALUES ('10.0.0.1', %s, 1)", (cutoff,))
        with pytest.raises(psycopg.errors.CheckViolation), connection.transaction():
            connection.execute("INSERT INTO login_failures VALUES ('z', 0, now())")


# --- rolling back task counts and idempotency keys --------------------------------------------


def test_rolling_back_the_idempotency_keys_migration_drops_its_table_and_keeps_the_rest(
    fresh_url: str,
) -> None:
    migrator = Migrator(fresh_url)
    migrator.apply()
    user_id, task_id = uuid.uuid4(), uuid.uuid4()
    with psycopg.connect(fresh_url) as connection:
        insert_user(connection, user_id)
        insert_task(connection, task_id, user_id)
        connection.execute(
            """INSERT INTO idempotency_keys (user_id, key, fingerprint, created_at)
               VALUES (%s, 'key', 'fingerprint', now())""",
            (user_id,),
        )
    position = ALL.index(IDEMPOTENCY_KEYS)

    assert migrator.rollback(steps=len(ALL) - position) == list(reversed(ALL[position:]))

    assert applied(migrator) == only_first(position)
    assert "idempotency_keys" not in app_tables(fresh_url)
    assert app_tables(fresh_url) == set().union(*(TABLES_OF[m] for m in ALL[:position]))
    assert user_and_task(fresh_url, user_id, task_id) == ("a@x.io", "h", "kept")
    assert task_counts_of(fresh_url) == {user_id: (1, 0)}

    assert migrator.apply() == ALL[position:]
    with psycopg.connect(fresh_url) as connection:
        assert connection.execute("SELECT count(*) FROM idempotency_keys").fetchone() == (0,)


def test_rolling_back_the_task_counts_migration_drops_its_table_triggers_and_functions(
    fresh_url: str,
) -> None:
    migrator = Migrator(fresh_url)
    migrator.apply()
    assert triggers_on_tasks(fresh_url) == {
        "tasks_updated_at",
        "tasks_count_inserts",
        "tasks_count_updates",
        "tasks_count_deletes",
        "tasks_truncate_counts",
        "tasks_title_key",
    }
    user_id, task_id = uuid.uuid4(), uuid.uuid4()
    with psycopg.connect(fresh_url) as connection:
        insert_user(connection, user_id)
        insert_task(connection, task_id, user_id)
    position = ALL.index(TASK_COUNTS)

    assert migrator.rollback(steps=len(ALL) - position) == list(reversed(ALL[position:]))

    assert applied(migrator) == only_first(position)
    assert {"task_counts", "idempotency_keys"}.isdisjoint(app_tables(fresh_url))
    assert triggers_on_tasks(fresh_url) == {"tasks_updated_at"}
    assert app_functions(fresh_url) == {"update_updated_at_column"}
    assert user_and_task(fresh_url, user_id, task_id) == ("a@x.io", "h", "kept")
    # Nothing left behind fires on tasks any more: every kind of write works.
    with psycopg.connect(fresh_url) as connection:
        insert_task(connection, uuid.uuid4(), user_id)
        connection.execute("UPDATE tasks SET completed = true WHERE id = %s", (task_id,))
        connection.execute("DELETE FROM tasks WHERE id = %s", (task_id,))
        connection.execute("TRUNCATE tasks")


def test_reapplying_the_task_counts_migration_counts_the_tasks_already_there(
    fresh_url: str,
) -> None:
    migrator = Migrator(fresh_url)
    migrator.apply()
    position = ALL.index(TASK_COUNTS)
    migrator.rollback(steps=len(ALL) - position)
    with psycopg.connect(fresh_url) as connection:
        alice = insert_tasks_of(connection, "alice@x.io", completed=2, open_=3)
        bob = insert_tasks_of(connection, "bob@x.io", completed=0, open_=3)
        carol = insert_tasks_of(connection, "carol@x.io", completed=0, open_=0)
        dave = insert_tasks_of(connection, "dave@x.io", completed=4, open_=0)
        erin = insert_tasks_of(connection, "erin@x.io", completed=1, open_=1)
        # Changes made while nothing counts them.
        connection.execute("UPDATE tasks SET completed = true WHERE user_id = %s", (bob,))
        connection.execute("DELETE FROM tasks WHERE user_id = %s AND completed", (erin,))

    assert migrator.apply() == ALL[position:]

    counts = task_counts_of(fresh_url)
    assert {user: counts.get(user, (0, 0)) for user in (alice, bob, carol, dave, erin)} == {
        alice: (5, 2),
        bob: (3, 3),
        carol: (0, 0),
        dave: (4, 4),
        erin: (1, 0),
    }
    # From there on the triggers keep them.
    with psycopg.connect(fresh_url) as connection:
        insert_task(connection, uuid.uuid4(), carol)
        connection.execute(
            "DELETE FROM tasks WHERE id = (SELECT id FROM tasks WHERE user_id = %s AND completed"
            " LIMIT 1)",
            (alice,),
        )
    counts = task_counts_of(fresh_url)
    assert (counts[alice], counts[carol]) == ((4, 1), (1, 0))


def test_rolling_back_the_per_statement_counting_restores_the_row_trigger_and_exact_counts(
    fresh_url: str, schema_after: list[Schema]
) -> None:
    migrator = Migrator(fresh_url)
    migrator.apply()
    with psycopg.connect(fresh_url) as connection:
        alice = insert_tasks_of(connection, "alice@x.io", completed=3, open_=4)
        bob = insert_tasks_of(connection, "bob@x.io", completed=1, open_=0)
    position = ALL.index(TASK_COUNTS_PER_STATEMENT)

    assert migrator.rollback(steps=len(ALL) - position) == list(reversed(ALL[position:]))

    # 0004's trigger and function, source and all, with the counts the statement triggers kept.
    assert schema(fresh_url) == schema_after[position]
    assert triggers_on_tasks(fresh_url) == {
        "tasks_updated_at",
        "tasks_count",
        "tasks_truncate_counts",
    }
    assert task_counts_of(fresh_url) == real_task_counts(fresh_url) == {alice: (7, 3), bob: (1, 1)}
    # The row trigger counts from there on...
    with psycopg.connect(fresh_url) as connection:
        connection.execute("UPDATE tasks SET user_id = %s WHERE user_id = %s", (bob, alice))
        insert_task(connection, uuid.uuid4(), alice)
    assert task_counts_of(fresh_url) == real_task_counts(fresh_url) == {alice: (1, 0), bob: (8, 4)}

    # ...and the statement triggers again once reapplied.
    assert migrator.apply() == ALL[position:]
    assert schema(fresh_url) == schema_after[-1]
    with psycopg.connect(fresh_url) as connection:
        connection.execute(
            "UPDATE tasks SET completed = NOT completed, user_id = %s WHERE user_id = %s",
            (alice, bob),
        )
        connection.execute("DELETE FROM tasks WHERE user_id = %s AND title = 'kept'", (alice,))
    assert task_counts_of(fresh_url) == {alice: (8, 4), bob: (0, 0)}
    assert real_task_counts(fresh_url) == {alice: (8, 4)}


# --- failures ----------------------------------------------------------------------------------


def test_an_unreachable_database_is_storage_unavailable() -> None:
    migrator = Migrator("postgresql://postgres@127.0.0.1:1/nothing?connect_timeout=2")

    with pytest.raises(StorageUnavailable):
        migrator.apply()
    with pytest.raises(StorageUnavailable):
        migrator.status()


def test_a_url_that_is_not_postgresql_is_refused() -> None:
    with pytest.raises(ValueError, match="postgresql://"):
        Migrator("mysql://root@localhost/todo")


def test_a_lock_left_by_a_killed_run_does_not_block_the_next_one(fresh_url: str) -> None:
    Migrator(fresh_url).apply()  # creates yoyo's lock table
    with psycopg.connect(fresh_url, autocommit=True) as connection:
        # What yoyo leaves behind when the process holding its lock is killed.
        connection.execute("INSERT INTO yoyo_lock (locked, ctime, pid) VALUES (1, now(), 999999)")
    Migrator(fresh_url).rollback(steps=1)
    started = time.monotonic()
    applied = Migrator(fresh_url).apply()
    assert len(applied) == 1
    assert time.monotonic() - started < 5  # yoyo alone would wait 10 s, then give up


def test_a_waiting_migrator_waits_as_long_as_the_running_one_takes(fresh_url: str) -> None:
    with psycopg.connect(fresh_url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(7405216381)")  # as a running migration does
        with ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(Migrator(fresh_url).apply)
            time.sleep(12)  # longer than yoyo's own lock timeout
            assert not waiting.done()
            holder.execute("SELECT pg_advisory_unlock(7405216381)")
            assert len(waiting.result(timeout=30)) == len(read_migrations(str(MIGRATIONS_DIR)))
