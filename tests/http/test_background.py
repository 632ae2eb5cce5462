"""The app's lifespan runs the background jobs while it serves: housekeeping purges what has
expired from PostgreSQL and keeps what has not; the runner stops with the app.

On a database of its own: another app of the session purging there would prove nothing.
"""

import asyncio
import logging
import time
from collections.abc import Callable

import psycopg
import pytest
from litestar.testing import TestClient

from adapters.postgres.migrations import Migrator
from adapters.postgres.pool import create_pool
from application.housekeeping import Purged
from entrypoints.bootstrap import build_services
from entrypoints.http.app import create_app
from tests.http.support import Account, make_settings

INTERVAL_SECONDS = 1

# Each table with a row that has expired and one that has not, by the service's rules
# (24 h idempotency window, 30 s token leeway, 15 min lockout, per-minute attempt windows).
EXPIRED_AND_LIVE = [
    """INSERT INTO revoked_tokens (token_key, expires_at)
       VALUES ('expired', now() - interval '1 hour'), ('live', now() + interval '1 hour')""",
    """INSERT INTO idempotency_keys (user_id, key, fingerprint, created_at)
       VALUES (%(user)s, 'expired', 'f', now() - interval '25 hours'),
              (%(user)s, 'live', 'f', now() - interval '23 hours')""",
    """INSERT INTO login_failures (account_key, failures, window_started_at)
       VALUES ('expired', 5, now() - interval '1 day'), ('live', 5, now())""",
    """INSERT INTO auth_attempts (client, window_started_at, attempts)
       VALUES ('expired', date_trunc('minute', now()) - interval '1 hour', 3),
              ('live', date_trunc('minute', now()), 3)""",
]
KEYS_LEFT = """
    SELECT 'revoked_tokens', token_key FROM revoked_tokens
    UNION ALL SELECT 'idempotency_keys', key FROM idempotency_keys
    UNION ALL SELECT 'login_failures', account_key FROM login_failures
    UNION ALL SELECT 'auth_attempts', client FROM auth_attempts
"""
TABLES = ("revoked_tokens", "idempotency_keys", "login_failures", "auth_attempts")


@pytest.fixture
def own_database(create_database: Callable[[], str]) -> str:
    url = create_database()
    Migrator(url).apply()
    return url


def keys_left(url: str) -> set[tuple[str, str]]:
    with psycopg.connect(url) as connection:
        return {(table, key) for table, key in connection.execute(KEYS_LEFT).fetchall()}


def until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_the_running_app_purges_what_has_expired_and_keeps_what_has_not(
    own_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "todo_api.background")
    settings = make_settings(own_database, housekeeping_interval_seconds=INTERVAL_SECONDS)
    with TestClient(create_app(settings)) as client:
        alice = Account(client, "alice@example.com")
        with psycopg.connect(own_database) as connection:  # one transaction: seen at once
            for statement in EXPIRED_AND_LIVE:
                connection.execute(statement, {"user": alice.id})
        live = {(table, "live") for table in TABLES}
        assert keys_left(own_database) == live | {(table, "expired") for table in TABLES}

        assert until(lambda: keys_left(own_database) == live), keys_left(own_database)
        assert client.get("/api/auth/me", headers=alice.headers).status_code == 200

    outcomes = [
        getattr(record, "outcome", None)
        for record in caplog.records
        if getattr(record, "job", None) == "housekeeping"
    ]
    assert Purged(idempotency_keys=1, revoked_tokens=1, login_windows=2) in outcomes, outcomes


def runner_tasks() -> list[asyncio.Task[object]]:
    return [task for task in asyncio.all_tasks() if task.get_name() == "background jobs"]


async def test_the_lifespan_starts_the_runner_and_stops_it_before_it_ends(
    own_database: str,
) -> None:
    app = create_app(make_settings(own_database, housekeeping_interval_seconds=INTERVAL_SECONDS))

    async with app.lifespan():  # in this test's event loop, as a server runs it
        [task] = runner_tasks()
        await asyncio.sleep(0.1)
        assert not task.done()
        pool = app.state.services.pool

    assert task.cancelled()
    assert runner_tasks() == []
    assert pool.closed


async def test_an_app_given_ready_made_services_runs_no_background_jobs(
    own_database: str,
) -> None:
    settings = make_settings(own_database)
    # The caller owns them: their pool may not even be open, as here.
    services = build_services(settings, create_pool(own_database))
    async with create_app(settings, services=services).lifespan():
        assert runner_tasks() == []
