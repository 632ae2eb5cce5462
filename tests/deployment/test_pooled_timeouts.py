"""The timeouts behind a pooler in transaction mode (PgBouncer, as Neon's pooled endpoint is),
which refuses the `options` startup parameter that carries them on a direct connection: with
DATABASE_URL_UNPOOLED set, the migrations store them as the role's defaults in the database,
every server session the pooler opens starts with them, and a statement past them answers 503
through the pooled HTTP path. Without it, the pool connects anyway, without them, and says so."""

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from adapters.postgres.migrations import Migrator
from adapters.postgres.pool import PostgresDatabase
from adapters.postgres.sessions import Timeouts
from entrypoints.http.app import create_app
from tests.cli.support import assert_ok, make_env, run
from tests.deployment.conftest import Database
from tests.deployment.support import PgBouncer
from tests.http.support import Account, Client, assert_problem, create_task, make_settings
from tests.http.test_database_errors import TIMED_OUT
from tests.http.test_resilience import holding_row
from tests.integration.support import SESSION, opened_pool, show

REFUSED = "refused the options startup parameter"


async def test_migrate_stores_the_timeouts_which_every_pooled_session_then_has(
    tmp_path: Path, pooled_database: Database, pgbouncer: PgBouncer
) -> None:
    env = make_env(tmp_path, pooled_database.pooled) | {
        "DATABASE_URL_UNPOOLED": pooled_database.direct,
        "DATABASE_STATEMENT_TIMEOUT_MS": "1500",
        "DATABASE_LOCK_TIMEOUT_MS": "700",
        "DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS": "9000",
    }
    assert_ok(run(["migrate"], env=env, cwd=tmp_path))

    # As open_services makes it with DATABASE_URL_UNPOOLED set: the name only, no options.
    async with opened_pool(
        pooled_database.pooled, min_size=2, max_size=2, prepare_threshold=None, timeouts=None
    ) as pool:
        database = PostgresDatabase(pool)
        for _ in range(3):  # whichever server session the pooler lends
            assert await show(database, "application_name", *SESSION) == [
                "todo-api",
                "1500ms",
                "700ms",
                "9s",
            ]
    assert "unsupported startup parameter" not in pgbouncer.log()


@pytest.fixture
def pooled_app(pooled_database: Database) -> Iterator[Client]:
    """An app of DATABASE_URL through the pooler and DATABASE_URL_UNPOOLED, its database
    migrated as `todo-api serve` does it (with a lock_timeout of 300 ms)."""
    settings = make_settings(
        pooled_database.pooled,
        database_url_unpooled=pooled_database.direct,
        prepare_threshold=None,
        lock_timeout_ms=300,
    )
    Migrator(
        pooled_database.direct,
        timeouts=Timeouts(statement_ms=2_000, lock_ms=300),
        store_as_role_defaults=True,
    ).apply()
    with TestClient(create_app(settings)) as client:
        yield client


def test_through_the_pooler_a_write_waiting_past_lock_timeout_is_503_then_goes_through(
    pooled_app: Client, pooled_database: Database
) -> None:
    alice = Account(pooled_app, "alice@example.com")
    task = create_task(pooled_app, alice)
    url = f"/api/tasks/{task['id']}"

    with holding_row(pooled_database.direct, task["id"]):
        refused = pooled_app.patch(url, json={"completed": True}, headers=alice.headers)
    accepted = pooled_app.patch(url, json={"completed": True}, headers=alice.headers)

    assert_problem(refused, 503, TIMED_OUT)
    assert refused.headers["retry-after"] == "5"
    assert accepted.status_code == 200, accepted.text


async def test_a_pooler_we_were_not_told_of_gets_connections_without_the_timeouts_and_a_warning(
    pooled_database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "todo_api.database")
    async with opened_pool(
        pooled_database.pooled, min_size=2, max_size=2, prepare_threshold=None
    ) as pool:
        database = PostgresDatabase(pool)
        for _ in range(3):
            assert await show(database, "application_name", *SESSION) == [
                "todo-api",
                "0",
                "0",
                "0",
            ]
    warnings = [r.getMessage() for r in caplog.records if REFUSED in r.getMessage()]
    assert len(warnings) == 1, warnings  # once, however many connections
    assert "DATABASE_URL_UNPOOLED" in warnings[0]
