"""todo-api behind a pooler in transaction mode (PgBouncer, as Neon's pooled endpoint is):
migrations that cannot hang, restarts and concurrent starts, no session state left behind, and
DATABASE_URL_UNPOOLED for what needs a session of its own."""

import asyncio
import secrets
import subprocess
import time
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg import sql

from adapters.postgres.migrations import Migrator
from adapters.postgres.pool import create_pool, open_pool, pooler_in
from tests.cli.support import (
    assert_ok,
    assert_one_line_failure,
    command,
    make_env,
    run,
    tables,
)
from tests.deployment.conftest import Database
from tests.deployment.support import PgBouncer, advisory_locks, pooled_connection_held
from tests.faults.support import (
    MIGRATION_IDS,
    PASSWORD,
    applied_migrations,
    bearer,
    free_port,
    service_env,
    sign_up,
    start_server,
)

MIGRATE_SECONDS = 30
"""Far more than a migration takes here; the hang this guards against never ends."""


def _migrate(tmp_path: Path, env: dict[str, str]) -> None:
    assert_ok(run(["migrate"], env=env, cwd=tmp_path, timeout=MIGRATE_SECONDS))


def test_migrating_twice_through_the_pooler_with_a_server_session_busy_does_not_hang(
    tmp_path: Path, pooled_database: Database
) -> None:
    env = make_env(tmp_path, pooled_database.pooled)
    _migrate(tmp_path, env)
    # Were the first run's lock left on the pooled server session it ran on, the next run,
    # routed past that session (another client keeps it busy), would wait for it for ever.
    with pooled_connection_held(pooled_database.pooled):
        rolled_back = run(["rollback"], env=env, cwd=tmp_path, timeout=MIGRATE_SECONDS)
        assert_ok(rolled_back)
        _migrate(tmp_path, env)
    assert advisory_locks(pooled_database.direct) == []
    assert applied_migrations(pooled_database.direct) == MIGRATION_IDS


def test_a_migration_waits_for_one_running_elsewhere_through_the_pooler(
    tmp_path: Path, pooled_database: Database
) -> None:
    env = make_env(tmp_path, pooled_database.pooled)
    with psycopg.connect(pooled_database.pooled, prepare_threshold=None) as running:
        # As a migration in progress holds it: in a transaction of a pinned server session.
        running.execute("SELECT pg_advisory_xact_lock(7405216381)")
        waiting = subprocess.Popen(  # noqa: S603 - the project's own console script
            command("migrate"), env=env, cwd=tmp_path, stdout=subprocess.DEVNULL
        )
        try:
            with pytest.raises(subprocess.TimeoutExpired):
                waiting.wait(timeout=3)
            assert tables(pooled_database.direct) == set()
        finally:
            running.commit()
            code = waiting.wait(timeout=MIGRATE_SECONDS)
    assert code == 0
    assert applied_migrations(pooled_database.direct) == MIGRATION_IDS


def test_serve_restarts_cleanly_through_the_pooler_three_times_in_a_row(
    tmp_path: Path, pooled_database: Database
) -> None:
    # Neon's way of naming a pooled endpoint, which the warning below would notice.
    env = service_env(tmp_path, _neon_like(pooled_database), DATABASE_PREPARE_THRESHOLD="off")
    email = f"restart-{secrets.token_hex(4)}@example.com"
    for attempt in range(3):
        server = start_server(tmp_path, env, name=f"run-{attempt}")
        try:
            server.wait_healthy(timeout=MIGRATE_SECONDS)
            if attempt == 0:
                token = sign_up(server.base_url, email)
            else:
                token = _log_in(server.base_url, email)
            created = httpx.post(
                f"{server.base_url}/api/tasks",
                json={"title": f"run {attempt}"},
                headers=bearer(token),
                timeout=10,
            )
            assert created.status_code == 201, created.text
            code, _ = server.terminate()
        finally:
            server.kill()
        output = server.output(tail=10**6)
        assert code == 0, output
        assert "Traceback" not in output, output
        # The threshold is off: nothing to warn of. (The timeouts are: no DATABASE_URL_UNPOOLED.)
        assert "DATABASE_PREPARE_THRESHOLD" not in output, output
        assert "refused the options startup parameter" in output, output
    assert advisory_locks(pooled_database.direct) == []
    assert applied_migrations(pooled_database.direct) == MIGRATION_IDS


def _log_in(base_url: str, email: str) -> str:
    response = httpx.post(
        f"{base_url}/api/auth/login", json={"email": email, "password": PASSWORD}, timeout=10
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def test_two_servers_started_at_once_through_the_pooler_both_come_up(
    tmp_path: Path, pooled_database: Database
) -> None:
    env = service_env(tmp_path, pooled_database.pooled, DATABASE_PREPARE_THRESHOLD="off")
    servers = [start_server(tmp_path, env, name=name) for name in ("first", "second")]
    try:
        for server in servers:
            server.wait_healthy(timeout=MIGRATE_SECONDS)
        token = sign_up(servers[0].base_url, "both@example.com")
        me = httpx.get(f"{servers[1].base_url}/api/auth/me", headers=bearer(token), timeout=10)
        assert me.status_code == 200, me.text
        for server in servers:
            code, _ = server.terminate()
            assert code == 0, server.output()
    finally:
        for server in servers:
            server.kill()
    assert applied_migrations(pooled_database.direct) == MIGRATION_IDS  # each applied once
    assert advisory_locks(pooled_database.direct) == []


def test_migrations_go_to_the_unpooled_url_and_requests_to_database_url(
    tmp_path: Path, pooled_database: Database
) -> None:
    nowhere = f"postgresql://postgres@127.0.0.1:{free_port()}/todo?connect_timeout=2"
    env = service_env(tmp_path, nowhere, DATABASE_URL_UNPOOLED=pooled_database.direct)
    server = start_server(tmp_path, env)
    try:
        applied = _wait_for_migrations(pooled_database.direct)
        assert applied == MIGRATION_IDS, server.output()
        # Up, but its requests go to DATABASE_URL, where nothing answers.
        health = _wait_for_answer(f"{server.base_url}/health")
        assert health.status_code == 503, health.text
    finally:
        server.kill()


def _wait_for_migrations(direct_url: str, timeout: float = MIGRATE_SECONDS) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            applied = applied_migrations(direct_url)
        except psycopg.errors.UndefinedTable:
            applied = []
        if applied == MIGRATION_IDS:
            return applied
        time.sleep(0.2)
    return []


def _wait_for_answer(url: str, timeout: float = MIGRATE_SECONDS) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return httpx.get(url, timeout=10)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_the_command_line_migrates_through_the_unpooled_url(
    tmp_path: Path, pooled_database: Database
) -> None:
    nowhere = f"postgresql://postgres@127.0.0.1:{free_port()}/todo?connect_timeout=2"
    env = make_env(tmp_path, nowhere) | {"DATABASE_URL_UNPOOLED": pooled_database.direct}
    migrated = assert_ok(run(["migrate"], env=env, cwd=tmp_path))
    assert migrated.stdout_lines == [f"applied {m}" for m in MIGRATION_IDS]
    listed = assert_ok(run(["migrations"], env=env, cwd=tmp_path))
    assert listed.stdout_lines == [f"applied\t{m}" for m in MIGRATION_IDS]
    assert applied_migrations(pooled_database.direct) == MIGRATION_IDS


def test_an_unpooled_url_without_a_database_url_is_refused_naming_both(tmp_path: Path) -> None:
    env = make_env(tmp_path, None) | {"DATABASE_URL_UNPOOLED": "postgresql://x@127.0.0.1/x"}
    failed = run(["migrate"], env=env, cwd=tmp_path)
    assert_one_line_failure(failed, "DATABASE_URL_UNPOOLED", "DATABASE_URL is not")
    assert not (tmp_path / "data").exists()  # no embedded database was started


def test_serve_warns_when_the_url_looks_pooled_and_statements_would_be_prepared(
    tmp_path: Path, pgbouncer: PgBouncer, pooled_database: Database
) -> None:
    env = service_env(
        tmp_path, _neon_like(pooled_database), DATABASE_URL_UNPOOLED=pooled_database.direct
    )
    server = start_server(tmp_path, env)
    try:
        server.wait_healthy(timeout=MIGRATE_SECONDS)
    finally:
        server.kill()
    output = server.output()
    warning = next(line for line in output.splitlines() if "pooler" in line)
    assert "host ep-test-pooler.example" in warning
    assert "DATABASE_PREPARE_THRESHOLD=off" in warning


def _neon_like(database: Database) -> str:
    """The pooled URL with a host name like Neon's pooled endpoints', reaching the test's
    PgBouncer by address."""
    named = database.pooled.replace("127.0.0.1", "ep-test-pooler.example", 1)
    return f"{named}?hostaddr=127.0.0.1"


@pytest.mark.parametrize(
    ("url", "pooler"),
    [
        (
            "postgresql://u:p@ep-cool-pooler.eu-central-1.aws.neon.tech/db",
            "host ep-cool-pooler.eu-central-1.aws.neon.tech",
        ),
        ("postgresql://u@db.example:6432/todo", "port 6432"),
        (
            "postgresql://u@aws-0-eu.pooler.supabase.com:6543/postgres",
            "host aws-0-eu.pooler.supabase.com",
        ),
        ("host=a,b port=5432,6432 dbname=todo", "port 6432"),
        ("postgresql://u@ep-cool.eu-central-1.aws.neon.tech/db", None),
        ("postgresql://u@db.example:5432/todo", None),
        ("postgresql://u@/todo?host=/run/pooler", None),  # a socket directory, not a host
        ("not a url", None),
    ],
)
def test_a_pooler_is_recognised_by_its_host_name_or_port(url: str, pooler: str | None) -> None:
    assert pooler_in(url) == pooler


def test_the_pools_utc_sessions_do_not_leak_to_other_clients_of_the_pooler(
    pooled_database: Database,
) -> None:
    zone = "America/Sao_Paulo"
    with psycopg.connect(pooled_database.direct, autocommit=True) as admin:
        admin.execute(
            sql.SQL("ALTER DATABASE {} SET timezone TO {}").format(
                sql.Identifier(admin.info.dbname), sql.Literal(zone)
            )
        )

    async def check() -> None:
        pool = create_pool(pooled_database.pooled, min_size=3, max_size=3, prepare_threshold=None)
        await open_pool(pool, wait=True, timeout=10)
        try:
            with psycopg.connect(pooled_database.pooled, autocommit=True) as other_client:
                for _ in range(10):
                    async with pool.connection() as connection:
                        ours = await (await connection.execute("SHOW TimeZone")).fetchone()
                    (theirs,) = other_client.execute("SHOW TimeZone").fetchone() or ("",)
                    assert ours == ("UTC",)
                    assert theirs == zone
        finally:
            await pool.close()

    asyncio.run(check())


def test_the_migrators_connection_never_prepares_statements(
    migrated_pooled_database: Database,
) -> None:
    # Each of its transactions may run on another server session of the pooler, which would
    # not know a statement prepared on the last one.
    with Migrator(migrated_pooled_database.pooled)._backend() as (backend, _):
        assert backend.connection.prepare_threshold is None
