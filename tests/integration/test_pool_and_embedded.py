"""The connection pool when the database is away, and the embedded PostgreSQL server."""

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psutil
import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from adapters.embedded import _forget_dead_users, start_embedded_postgres
from adapters.postgres.pool import create_pool, open_pool, ping, transaction
from adapters.postgres.repositories import PostgresTaskRepository, PostgresUserRepository
from application.errors import StorageUnavailable

UNREACHABLE = "postgresql://postgres@127.0.0.1:1/x?connect_timeout=1"
# With a timeout, pg_terminate_backend returns only once the backend has gone.
TERMINATE = "SELECT pg_terminate_backend(%s, 5000)"


@pytest.fixture
async def pool(clean_database: str) -> AsyncIterator[AsyncConnectionPool]:
    pool = create_pool(clean_database, min_size=1, max_size=2)
    await open_pool(pool, wait=True, timeout=5)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def unreachable_pool() -> AsyncIterator[AsyncConnectionPool]:
    pool = create_pool(UNREACHABLE, min_size=1, max_size=1, timeout=1)
    await open_pool(pool, wait=False, timeout=1)
    try:
        yield pool
    finally:
        await pool.close()


# --- an unreachable database -------------------------------------------------------------------


async def test_opening_a_pool_on_an_unreachable_server_is_storage_unavailable() -> None:
    pool = create_pool(UNREACHABLE, min_size=1, max_size=1, timeout=1)
    started = time.monotonic()

    with pytest.raises(StorageUnavailable):
        await open_pool(pool, wait=True, timeout=1)

    assert time.monotonic() - started < 5
    assert pool.closed


async def test_ping_is_false_when_the_server_cannot_be_reached(
    unreachable_pool: AsyncConnectionPool,
) -> None:
    started = time.monotonic()

    assert await ping(unreachable_pool) is False

    assert time.monotonic() - started < 5


async def test_a_transaction_on_an_unreachable_server_is_storage_unavailable(
    unreachable_pool: AsyncConnectionPool,
) -> None:
    with pytest.raises(StorageUnavailable):
        async with transaction(unreachable_pool) as connection:
            await connection.execute("SELECT 1")


async def test_repositories_on_an_unreachable_server_raise_storage_unavailable(
    unreachable_pool: AsyncConnectionPool,
) -> None:
    with pytest.raises(StorageUnavailable):
        await PostgresUserRepository(unreachable_pool).get(uuid.uuid4())
    with pytest.raises(StorageUnavailable):
        await PostgresTaskRepository(unreachable_pool).list_for_owner(
            uuid.uuid4(), completed=None, limit=10, offset=0
        )


# --- a reachable database ----------------------------------------------------------------------


async def test_ping_is_true_when_the_server_answers(pool: AsyncConnectionPool) -> None:
    assert await ping(pool) is True


async def test_a_connection_killed_mid_transaction_is_storage_unavailable_and_the_pool_recovers(
    pool: AsyncConnectionPool, clean_database: str
) -> None:
    with pytest.raises(StorageUnavailable):
        async with transaction(pool) as connection:
            pid = connection.info.backend_pid
            with psycopg.connect(clean_database, autocommit=True) as admin:
                admin.execute(TERMINATE, (pid,))
            await connection.execute("SELECT 1")

    assert await ping(pool) is True


async def test_an_idle_connection_killed_by_the_server_is_replaced_before_use(
    pool: AsyncConnectionPool, clean_database: str
) -> None:
    # What a server restart or a managed database's idle timeout does to the pool.
    async with pool.connection() as connection:
        pid = connection.info.backend_pid
    with psycopg.connect(clean_database, autocommit=True) as admin:
        admin.execute(TERMINATE, (pid,))

    assert await ping(pool) is True
    async with transaction(pool) as connection:
        assert connection.info.backend_pid != pid


async def test_a_transaction_commits_on_success_and_rolls_back_on_error(
    pool: AsyncConnectionPool,
) -> None:
    kept, dropped = uuid.uuid4(), uuid.uuid4()
    insert = "INSERT INTO users (id, email, password_hash) VALUES (%s, %s, 'h')"
    async with transaction(pool) as connection:
        await connection.execute(insert, (kept, "kept@example.com"))

    with pytest.raises(ZeroDivisionError):  # not a storage problem: passed through untouched
        async with transaction(pool) as connection:
            await connection.execute(insert, (dropped, "dropped@example.com"))
            _ = 1 / 0

    users = PostgresUserRepository(pool)
    assert await users.get(kept) is not None
    assert await users.get(dropped) is None


# --- the embedded server -----------------------------------------------------------------------


def test_the_embedded_server_serves_queries_and_keeps_its_data_across_restarts(
    tmp_path: Path,
) -> None:
    first = start_embedded_postgres(tmp_path)
    try:
        with psycopg.connect(first.url) as connection:
            assert connection.execute("SELECT current_database()").fetchone() == ("todo",)
            connection.execute("CREATE TABLE notes (body text NOT NULL)")
            connection.execute("INSERT INTO notes VALUES ('written before the restart')")
    finally:
        first.stop()

    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(first.url, connect_timeout=2).close()

    second = start_embedded_postgres(tmp_path)
    try:
        with psycopg.connect(second.url) as connection:
            rows = connection.execute("SELECT body FROM notes").fetchall()
    finally:
        second.stop()

    assert rows == [("written before the restart",)]
    assert (tmp_path / "postgres").is_dir()


def a_dead_pid() -> int:
    """The pid of a process that has run and exited: what a killed user leaves in the list."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    assert not psutil.pid_exists(process.pid)
    return process.pid


@pytest.fixture
def a_live_pid() -> Iterator[int]:
    """The pid of another process that runs for the length of the test."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield process.pid
    finally:
        process.kill()
        process.wait()


def postgres_servers_of(pgdata: Path) -> list[psutil.Process]:
    """The running processes whose command line names the data directory."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info["cmdline"] or []
        if any(str(pgdata) in part for part in cmdline) and process.is_running():
            found.append(process)
    return found


def test_forgetting_dead_users_drops_the_pids_of_exited_processes_and_keeps_live_ones(
    tmp_path: Path, a_live_pid: int
) -> None:
    handles = tmp_path / ".handle_pids.json"
    dead = [a_dead_pid(), a_dead_pid()]
    handles.write_text(json.dumps([dead[0], os.getpid(), dead[1], a_live_pid]))

    _forget_dead_users(tmp_path)

    assert json.loads(handles.read_text()) == [os.getpid(), a_live_pid]


def test_forgetting_dead_users_leaves_a_list_of_live_ones_a_missing_list_and_garbage_alone(
    tmp_path: Path, a_live_pid: int
) -> None:
    _forget_dead_users(tmp_path)  # no list at all
    assert not (tmp_path / ".handle_pids.json").exists()

    handles = tmp_path / ".handle_pids.json"
    for content in (json.dumps([a_live_pid, os.getpid()]), "not json {", ""):
        handles.write_text(content)
        _forget_dead_users(tmp_path)
        assert handles.read_text() == content


def test_the_embedded_server_stops_on_stop_although_a_killed_process_is_still_listed(
    tmp_path: Path,
) -> None:
    pgdata = (tmp_path / "postgres").resolve()
    start_embedded_postgres(tmp_path).stop()  # creates the data directory
    assert postgres_servers_of(pgdata) == []
    # A process that used the server was killed: it never took itself off the list.
    (pgdata / ".handle_pids.json").write_text(json.dumps([a_dead_pid()]))

    database = start_embedded_postgres(tmp_path)
    try:
        assert postgres_servers_of(pgdata) != []
        with psycopg.connect(database.url) as connection:
            assert connection.execute("SELECT 1").fetchone() == (1,)
        database.stop()

        assert postgres_servers_of(pgdata) == []
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(database.url, connect_timeout=2).close()
    finally:
        # Whatever happened above, the server this test started does not outlive it.
        for server in postgres_servers_of(pgdata):
            server.terminate()
            server.wait(10)
