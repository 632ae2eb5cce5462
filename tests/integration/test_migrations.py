"""Applying and rolling back the migrations in migrations/ on fresh databases."""

import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from adapters.postgres.migrations import MIGRATIONS_DIR, Migrator
from application.errors import StorageUnavailable

# Every migration in migrations/, oldest first, so that adding one does not break these tests.
ALL = sorted(p.stem for p in MIGRATIONS_DIR.glob("*.sql") if not p.stem.endswith(".rollback"))
APP_TABLES = {"users", "tasks", "revoked_tokens"}


def app_tables(url: str) -> set[str]:
    """The tables in the public schema that are not yoyo's own bookkeeping."""
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            """SELECT table_name FROM information_schema.tables
               WHERE table_schema = 'public'
                 AND table_name NOT LIKE '\\_yoyo%' AND table_name NOT LIKE 'yoyo%'"""
        ).fetchall()
    return {name for (name,) in rows}


def app_functions(url: str) -> set[str]:
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            """SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
               WHERE n.nspname = 'public'"""
        ).fetchall()
    return {name for (name,) in rows}


def applied(migrator: Migrator) -> dict[str, bool]:
    return {status.id: status.applied for status in migrator.status()}


@pytest.fixture
def fresh_url(create_database: Callable[[], str]) -> str:
    return create_database()


def test_a_fresh_database_has_everything_pending(fresh_url: str) -> None:
    assert applied(Migrator(fresh_url)) == dict.fromkeys(ALL, False)
    assert app_tables(fresh_url) == set()


def test_apply_runs_every_migration_in_order_and_status_shows_them_applied(
    fresh_url: str,
) -> None:
    migrator = Migrator(fresh_url)

    assert migrator.apply() == ALL

    assert applied(migrator) == dict.fromkeys(ALL, True)
    assert app_tables(fresh_url) == APP_TABLES
    assert "update_updated_at_column" in app_functions(fresh_url)


def test_apply_is_idempotent(fresh_url: str) -> None:
    migrator = Migrator(fresh_url)
    migrator.apply()

    assert migrator.apply() == []
    assert Migrator(fresh_url).apply() == []
    assert applied(migrator) == dict.fromkeys(ALL, True)
    assert app_tables(fresh_url) == APP_TABLES


def test_processes_racing_to_apply_apply_each_migration_exactly_once(fresh_url: str) -> None:
    # Several server workers start at once, each applying pending migrations.
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda _: Migrator(fresh_url).apply(), range(3)))

    assert sorted(m for result in results for m in result) == ALL
    assert applied(Migrator(fresh_url)) == dict.fromkeys(ALL, True)
    assert app_tables(fresh_url) == APP_TABLES


def test_rolling_back_every_step_leaves_nothing_and_reapplying_restores_it(
    fresh_url: str,
) -> None:
    migrator = Migrator(fresh_url)
    migrator.apply()

    assert migrator.rollback(steps=len(ALL)) == list(reversed(ALL))

    assert app_tables(fresh_url) == set()
    assert "update_updated_at_column" not in app_functions(fresh_url)
    assert applied(migrator) == dict.fromkeys(ALL, False)
    assert migrator.rollback(steps=1) == []

    assert migrator.apply() == ALL
    assert app_tables(fresh_url) == APP_TABLES
    assert applied(migrator) == dict.fromkeys(ALL, True)


def test_the_migrations_are_found_oldest_first() -> None:
    assert ALL[:2] == ["0001.users-and-tasks", "0002.revoked-tokens"]


def test_rolling_back_one_step_undoes_only_the_newest_migration(fresh_url: str) -> None:
    migrator = Migrator(fresh_url)
    migrator.apply()

    assert migrator.rollback() == ALL[-1:]

    assert applied(migrator) == {m: m != ALL[-1] for m in ALL}
    assert migrator.apply() == ALL[-1:]
    assert applied(migrator) == dict.fromkeys(ALL, True)
    assert app_tables(fresh_url) == APP_TABLES


def test_rolling_back_to_the_first_migration_drops_revoked_tokens_and_keeps_the_data(
    fresh_url: str,
) -> None:
    migrator = Migrator(fresh_url)
    migrator.apply()
    user_id = uuid.uuid4()
    with psycopg.connect(fresh_url) as connection:
        connection.execute(
            "INSERT INTO users (id, email, password_hash) VALUES (%s, 'a@x.io', 'h')", (user_id,)
        )

    assert migrator.rollback(steps=len(ALL) - 1) == list(reversed(ALL[1:]))

    assert app_tables(fresh_url) == {"users", "tasks"}
    assert applied(migrator) == {m: m == ALL[0] for m in ALL}

    assert migrator.apply() == ALL[1:]
    assert app_tables(fresh_url) == APP_TABLES
    with psycopg.connect(fresh_url) as connection:
        row = connection.execute("SELECT email FROM users WHERE id = %s", (user_id,)).fetchone()
    assert row == ("a@x.io",)


def test_the_schema_works_after_a_full_round_trip(fresh_url: str) -> None:
    migrator = Migrator(fresh_url)
    migrator.apply()
    migrator.rollback(steps=len(ALL))
    migrator.apply()

    with psycopg.connect(fresh_url) as connection:
        user_id = uuid.uuid4()
        connection.execute(
            "INSERT INTO users (id, email, password_hash) VALUES (%s, 'a@x.io', 'h')", (user_id,)
        )
        connection.execute(
            "INSERT INTO tasks (id, user_id, title) VALUES (%s, %s, 't')", (uuid.uuid4(), user_id)
        )
        connection.execute("INSERT INTO revoked_tokens VALUES ('k', now())")
        with pytest.raises(psycopg.errors.UniqueViolation):
            connection.execute(
                "INSERT INTO users (id, email, password_hash) VALUES (%s, 'A@X.IO', 'h')",
                (uuid.uuid4(),),
            )


def test_an_unreachable_database_is_storage_unavailable() -> None:
    migrator = Migrator("postgresql://postgres@127.0.0.1:1/nothing?connect_timeout=2")

    with pytest.raises(StorageUnavailable):
        migrator.apply()
    with pytest.raises(StorageUnavailable):
        migrator.status()


def test_a_url_that_is_not_postgresql_is_refused() -> None:
    with pytest.raises(ValueError, match="postgresql://"):
        Migrator("mysql://root@localhost/todo")
