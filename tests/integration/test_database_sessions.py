"""What every session todo-api opens carries, observed on the real server: its name and its
timeouts, in the startup packet, for the pool (the URL's own options winning) and for the
migrator (no statement_timeout, its lock_timeout, and none at all for the session holding the
migrations' lock); and, for a pooler that cannot carry them, the timeouts stored as the role's
defaults in the database."""

import logging
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg_pool import AsyncConnectionPool

from adapters.postgres import sessions
from adapters.postgres.migrations import Migrator
from adapters.postgres.pool import PostgresDatabase
from adapters.postgres.sessions import Timeouts
from application.errors import StatementTimedOut
from tests.integration.support import SESSION, opened_pool, show


async def test_pooled_sessions_carry_the_name_and_the_default_timeouts(
    pool: AsyncConnectionPool, database: PostgresDatabase, clean_database: str
) -> None:
    assert await show(database, *SESSION) == ["5s", "2s", "30s"]
    async with database.atomic():  # a block's session is the same
        assert await show(database, *SESSION) == ["5s", "2s", "30s"]
    # Every connection of the pool at once, each asked its own name (other pools of the test
    # session may be connected to the same database under the same name).
    async with pool.connection() as first, pool.connection() as second:
        for connection in (first, second):
            cursor = await connection.execute("SHOW application_name")
            assert await cursor.fetchone() == ("todo-api",)


async def test_the_urls_own_name_and_options_win(clean_database: str) -> None:
    url = make_conninfo(
        clean_database, application_name="mine", options="-c statement_timeout=1234"
    )
    async with opened_pool(url, min_size=1, max_size=1) as pool:
        database = PostgresDatabase(pool)
        assert await show(database, "application_name", *SESSION) == ["mine", "1234ms", "2s", "30s"]


async def test_without_timeouts_the_session_has_only_the_name(clean_database: str) -> None:
    async with opened_pool(clean_database, min_size=1, max_size=1, timeouts=None) as pool:
        database = PostgresDatabase(pool)
        assert await show(database, "application_name", *SESSION) == ["todo-api", "0", "0", "0"]


SEEN_SQL = """
SELECT pg_sleep(0.5);
CREATE TABLE seen AS SELECT
    current_setting('application_name') AS name,
    current_setting('statement_timeout') AS statement_timeout,
    current_setting('lock_timeout') AS lock_timeout,
    current_setting('idle_in_transaction_session_timeout') AS idle_in_transaction,
    (SELECT array_agg(application_name ORDER BY application_name) FROM pg_stat_activity
     WHERE datname = current_database() AND pid <> pg_backend_pid()
     AND backend_type = 'client backend') AS others;
"""


def a_migration(tmp_path: Path, sql_text: str, name: str = "0001.only") -> Path:
    directory = tmp_path / "migrations"
    directory.mkdir(exist_ok=True)
    (directory / f"{name}.sql").write_text(sql_text)
    (directory / f"{name}.rollback.sql").write_text("SELECT 1;")
    return directory


def plain_session(url: str, *names: str, **kwargs: Any) -> list[str]:
    """SHOW on a connection of no options of its own: what a pooler's server session gets."""
    with psycopg.connect(url, autocommit=True, **kwargs) as connection:
        return [connection.execute(f"SHOW {name}").fetchall()[0][0] for name in names]


def test_migrations_run_named_without_statement_timeout_but_with_lock_timeout(
    create_database: Callable[[], str], tmp_path: Path
) -> None:
    url = create_database()
    # Defaults a pooled deployment stored earlier: the migrations' sessions override them, or
    # the migration's half-second sleep would be cut off, and the session holding the lock,
    # idle in its transaction meanwhile, ended.
    with psycopg.connect(url, autocommit=True) as connection:
        sessions.store_as_role_defaults(connection, Timeouts(100, 100, 100))

    Migrator(url, a_migration(tmp_path, SEEN_SQL), timeouts=Timeouts(4_000, 1_500, 9_000)).apply()

    with psycopg.connect(url, autocommit=True) as connection:
        seen = connection.execute("SELECT * FROM seen").fetchall()
    ((name, statement_timeout, lock_timeout, idle_in_transaction, others),) = seen
    assert (statement_timeout, lock_timeout, idle_in_transaction) == ("0", "1500ms", "0")
    # yoyo's session, and the one holding the migrations' lock (with maybe one just closed).
    assert name == "todo-api"
    assert set(others) == {"todo-api"}


def test_a_migration_waiting_past_lock_timeout_is_statement_timed_out_and_can_run_again(
    create_database: Callable[[], str], tmp_path: Path
) -> None:
    url = create_database()
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("CREATE TABLE busy (id int)")
    migrator = Migrator(
        url,
        a_migration(tmp_path, "ALTER TABLE busy ADD COLUMN more int;"),
        timeouts=Timeouts(lock_ms=300),
    )

    with psycopg.connect(url) as reader:
        reader.execute("SELECT * FROM busy")  # a transaction reading the table holds it
        started = time.monotonic()
        with pytest.raises(StatementTimedOut) as raised:
            migrator.apply()
        assert time.monotonic() - started < 5
        reader.rollback()

    assert isinstance(raised.value.__cause__, psycopg.errors.LockNotAvailable)
    assert [m.applied for m in migrator.status()] == [False]
    assert migrator.apply() == ["0001.only"]


def test_through_a_pooler_apply_stores_the_timeouts_as_the_roles_defaults_once(
    create_database: Callable[[], str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = create_database()
    migrator = Migrator(
        url,
        a_migration(tmp_path, "SELECT 1;"),
        timeouts=Timeouts(1_500, 700, 9_000),
        store_as_role_defaults=True,
    )
    caplog.set_level(logging.INFO, "todo_api")

    migrator.apply()
    stored = role_setting_version(url)
    migrator.apply()

    assert plain_session(url, *SESSION) == ["1500ms", "700ms", "9s"]
    assert role_setting_version(url) == stored  # the second start wrote nothing
    assert [r.getMessage() for r in caplog.records if "stored" in r.getMessage()] == [
        f"stored {name} as this role's default in this database" for name in SESSION
    ]
    # Only in this database: the server's other databases keep their own defaults.
    assert plain_session(url, *SESSION, dbname="postgres") == ["0", "0", "0"]


def role_setting_version(url: str) -> str:
    with psycopg.connect(url, autocommit=True) as connection:
        ((xmin,),) = connection.execute(
            "SELECT xmin::text FROM pg_db_role_setting WHERE setdatabase = "
            "(SELECT oid FROM pg_database WHERE datname = current_database())"
        ).fetchall()
    return str(xmin)


def test_an_ordinary_role_may_store_its_own_defaults(create_database: Callable[[], str]) -> None:
    url = create_database()
    role = f"todo_plain_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    try:
        with psycopg.connect(url, autocommit=True, user=role) as connection:
            changed = sessions.store_as_role_defaults(connection, Timeouts(1_234, 567, 8_000))
            assert changed == list(SESSION)
            assert sessions.store_as_role_defaults(connection, Timeouts(1_234, 567, 8_000)) == []
        assert plain_session(url, *SESSION, user=role) == ["1234ms", "567ms", "8s"]
        assert plain_session(url, *SESSION) == ["0", "0", "0"]  # the admin role's: untouched
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_the_parameters_name_the_application_and_put_the_urls_own_options_last() -> None:
    timeouts = Timeouts(1, 2, 3)
    ours = "-c statement_timeout=1 -c lock_timeout=2 -c idle_in_transaction_session_timeout=3"
    assert sessions.session_parameters("postgresql://h/db", timeouts) == {
        "fallback_application_name": "todo-api",
        "options": ours,
    }
    with_options = "postgresql://h/db?options=-c%20search_path%3Dx"
    assert sessions.session_parameters(with_options, timeouts)["options"] == (
        f"{ours} -c search_path=x"
    )
    assert sessions.session_parameters("postgresql://h/db", None) == {
        "fallback_application_name": "todo-api"
    }


def test_a_pooler_refusing_options_is_recognised_by_its_messages() -> None:
    for message in (
        "connection failed: ... failed: FATAL:  unsupported startup parameter: options",
        "FATAL:  unsupported startup parameter in options: lock_timeout",  # PgBouncer 1.20+
    ):
        assert sessions.refuses_options(psycopg.OperationalError(message))
    assert not sessions.refuses_options(psycopg.OperationalError("connection refused"))
    assert not sessions.refuses_options(
        psycopg.OperationalError("unsupported startup parameter: replication")
    )
