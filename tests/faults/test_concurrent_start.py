"""Two `todo-api serve` processes started at the same moment on an empty database (or on the
same empty data directory, each starting the embedded database and generating the secret):
both come up, the migrations are applied once, neither crashes."""

import secrets
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from adapters.postgres.migrations import Migrator
from tests.faults.support import (
    MIGRATION_IDS,
    PASSWORD,
    STARTUP_SECONDS,
    Cluster,
    Server,
    applied_migrations,
    bearer,
    postgres_servers_of,
    query,
    schema,
    service_env,
    sign_up,
    start_server,
    wait_until_gone,
)

pytestmark = pytest.mark.faults

SHUTDOWN_SECONDS = 20
MIGRATION_DELAY_SECONDS = 1.0
"""How much longer the first migration stays blocked once both processes are migrating (less
than yoyo's 10 s lock timeout)."""


def _start_both(tmp_path: Path, env: dict[str, str]) -> tuple[Server, Server]:
    first = start_server(tmp_path, env, name="first")
    second = start_server(tmp_path, env, name="second")
    return first, second


def _both_up(servers: tuple[Server, Server]) -> None:
    for server in servers:
        server.wait_healthy()
        assert httpx.get(f"{server.base_url}/health", timeout=10).json() == {
            "status": "healthy",
            "database": "ok",
        }


def _stop_both(servers: tuple[Server, Server]) -> None:
    for server in servers:
        code, _ = server.terminate(timeout=SHUTDOWN_SECONDS)
        output = server.output(tail=10**7)
        assert code == 0, output
        assert "Traceback" not in output, output


def test_two_servers_started_at_once_on_an_empty_database_migrate_it_once(
    tmp_path: Path, shared_cluster: Cluster, empty_database: str
) -> None:
    reference = shared_cluster.create_database(f"reference_{secrets.token_hex(6)}")
    Migrator(reference).apply()

    # The first migration is made slow (its first table is being created by a transaction of
    # this test, so creating it waits), until both processes are in the middle of migrating:
    # they start at the same moment, but a process's start-up time varies by seconds here.
    with psycopg.connect(empty_database) as blocker:
        blocker.execute("CREATE TABLE users (id int)")
        servers = _start_both(tmp_path, service_env(tmp_path, empty_database))
        try:
            _wait_for_both_to_migrate(empty_database, blocker.info.backend_pid, servers)
        except BaseException:
            for server in servers:
                server.kill()
            raise
        blocker.rollback()
    try:
        _both_up(servers)
        assert applied_migrations(empty_database) == MIGRATION_IDS
        applies = query(
            empty_database,
            "SELECT migration_id, count(*) FROM _yoyo_log WHERE operation = 'apply' "
            "GROUP BY migration_id ORDER BY migration_id",
        )
        assert applies == [(migration, 1) for migration in MIGRATION_IDS]
        assert schema(empty_database) == schema(reference)
        # And both serve the same data.
        first, second = servers
        token = sign_up(first.base_url, "twice@example.com")
        created = httpx.post(
            f"{second.base_url}/api/tasks", json={"title": "via second"}, headers=bearer(token)
        )
        assert created.status_code == 201, created.text
        listed = httpx.get(f"{first.base_url}/api/tasks", headers=bearer(token), timeout=10)
        assert [task["title"] for task in listed.json()["tasks"]] == ["via second"]
        _stop_both(servers)
    finally:
        for server in servers:
            server.kill()


def test_two_servers_started_at_once_share_the_embedded_database_and_the_secret(
    tmp_path: Path, data_dir: Path
) -> None:
    # No DATABASE_URL and no BETTER_AUTH_SECRET: each starts the embedded database in the
    # same, empty data directory and generates the secret if there is none yet.
    env = service_env(tmp_path, None, BETTER_AUTH_SECRET="")
    servers = _start_both(tmp_path, env)
    try:
        _both_up(servers)
        first, second = servers
        assert len(postgres_servers_of(data_dir)) == 1
        secret = (data_dir / "auth-secret").read_text().strip()
        assert len(secret) >= 32
        assert sorted(p.name for p in data_dir.iterdir()) == ["auth-secret", "postgres"]

        # A token from one works on the other, both ways: they sign with the same secret.
        token = sign_up(first.base_url, "shared@example.com")
        me = httpx.get(f"{second.base_url}/api/auth/me", headers=bearer(token), timeout=10)
        assert me.status_code == 200, me.text
        logged_in = httpx.post(
            f"{second.base_url}/api/auth/login",
            json={"email": "shared@example.com", "password": PASSWORD},
            timeout=30,
        )
        assert logged_in.status_code == 200, logged_in.text
        other = logged_in.json()["access_token"]
        me = httpx.get(f"{first.base_url}/api/auth/me", headers=bearer(other), timeout=10)
        assert me.status_code == 200, me.text

        url = _embedded_url(data_dir / "postgres")
        assert applied_migrations(url) == MIGRATION_IDS

        postgres = postgres_servers_of(data_dir)
        _stop_both(servers)
        # The last one to go stopped the embedded database.
        assert wait_until_gone(postgres, timeout=5) == []
    finally:
        for server in servers:
            server.kill()


def _wait_for_both_to_migrate(url: str, blocker_pid: int, servers: tuple[Server, Server]) -> None:
    """Waits (a bounded time) until both processes are connected and one of them is blocked
    creating the first migration's table; then a moment more. The one applying migrations has
    two connections (yoyo runs the steps on a second one), the other at least one."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        for server in servers:
            assert server.process.poll() is None, server.output()
        ((connected, blocked),) = query(
            url,
            "SELECT count(*), count(*) FILTER (WHERE wait_event_type = 'Lock') "
            "FROM pg_stat_activity WHERE datname = current_database() "
            "AND backend_type = 'client backend' AND pid NOT IN (pg_backend_pid(), %s)",
            (blocker_pid,),
        )
        if connected >= 3 and blocked >= 1:
            break
        assert time.monotonic() < deadline, [server.output() for server in servers]
        time.sleep(0.05)
    time.sleep(MIGRATION_DELAY_SECONDS)


def _embedded_url(pgdata: Path) -> str:
    """The URL of the `todo` database of the embedded server running in pgdata (from the
    socket directory and port in its postmaster.pid)."""
    deadline = time.monotonic() + 5
    lines = (pgdata / "postmaster.pid").read_text().splitlines()
    while len(lines) < 5 and time.monotonic() < deadline:
        time.sleep(0.1)
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
    port, socket_dir = lines[3].strip(), lines[4].strip()
    return f"postgresql://postgres@/todo?host={socket_dir}&port={port}"
