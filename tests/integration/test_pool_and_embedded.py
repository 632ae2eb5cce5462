"""The connection pool when the database is away or drops connections, the pool's check of a
connection before lending it, and the embedded PostgreSQL server."""

import asyncio
import json
import os
import select
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import psycopg
import pytest
from psycopg.conninfo import make_conninfo
from psycopg_pool import AsyncConnectionPool

from adapters.embedded import _forget_dead_users, start_embedded_postgres
from adapters.postgres.pool import PostgresDatabase, create_pool, open_pool
from adapters.postgres.tasks import PostgresTaskRepository
from adapters.postgres.users import PostgresUserRepository
from application.errors import ServerBusy, StorageUnavailable
from domain.queries import TaskQuery
from domain.users import User
from tests.integration.support import caller_of, opened_pool


def now() -> datetime:
    """When a list is read: what is overdue is decided by it."""
    return datetime.now(UTC)


UNREACHABLE = "postgresql://postgres@127.0.0.1:1/x?connect_timeout=1"
# With a timeout, pg_terminate_backend returns only once the backend has gone.
TERMINATE = "SELECT pg_terminate_backend(%s, 5000)"
T0 = datetime(2024, 5, 1, 12, 30, 45, tzinfo=UTC)


@pytest.fixture
async def pool(clean_database: str) -> AsyncIterator[AsyncConnectionPool]:
    async with opened_pool(clean_database, min_size=1, max_size=2) as pool:
        yield pool


@pytest.fixture
async def one_connection_pool(clean_database: str) -> AsyncIterator[AsyncConnectionPool]:
    """A pool of a single connection: what it lends next is that one or its replacement."""
    async with opened_pool(clean_database, min_size=1, max_size=1, timeout=5) as pool:
        yield pool


@pytest.fixture
async def unreachable_pool() -> AsyncIterator[AsyncConnectionPool]:
    pool = create_pool(UNREACHABLE, min_size=1, max_size=1, timeout=1)
    await open_pool(pool, wait=False, timeout=1)
    try:
        yield pool
    finally:
        await pool.close()


def terminate(url: str, pid: int) -> None:
    """What a server restart or a managed database's idle timeout does to a connection."""
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(TERMINATE, (pid,))


async def wait_until_readable(connection: psycopg.AsyncConnection[Any]) -> None:
    """Until the server's side of an idle connection has spoken or closed the socket."""
    poller = select.poll()
    poller.register(connection.fileno(), select.POLLIN | select.POLLERR | select.POLLHUP)
    deadline = time.monotonic() + 5
    while not poller.poll(0):
        assert time.monotonic() < deadline, "the socket never became readable"
        await asyncio.sleep(0.01)


def activity(url: str, pid: int) -> tuple[str, str, datetime]:
    """A backend's last statement, state and time of its last change of state, as another
    connection sees them: every statement the backend receives changes the time."""
    with psycopg.connect(url, autocommit=True) as admin:
        row = admin.execute(
            "SELECT query, state, state_change FROM pg_stat_activity WHERE pid = %s", (pid,)
        ).fetchone()
    assert row is not None, f"no backend {pid}"
    return row[0], row[1], row[2]


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

    assert await PostgresDatabase(unreachable_pool).reachable() is False

    assert time.monotonic() - started < 5


async def test_a_call_or_an_atomic_block_on_an_unreachable_server_is_storage_unavailable(
    unreachable_pool: AsyncConnectionPool,
) -> None:
    database = PostgresDatabase(unreachable_pool)

    with pytest.raises(StorageUnavailable):
        async with database.connection() as connection:
            await connection.execute("SELECT 1")
    with pytest.raises(StorageUnavailable):
        async with database.atomic():
            await PostgresUserRepository(database).get(uuid.uuid4())


async def test_repositories_on_an_unreachable_server_raise_storage_unavailable(
    unreachable_pool: AsyncConnectionPool,
) -> None:
    database = PostgresDatabase(unreachable_pool)
    with pytest.raises(StorageUnavailable):
        await PostgresUserRepository(database).get(uuid.uuid4())
    with pytest.raises(StorageUnavailable):
        await (
            PostgresTaskRepository(database)
            .for_caller(caller_of(uuid.uuid4()))
            .list(TaskQuery(), now())
        )


# --- a reachable database ----------------------------------------------------------------------


async def test_ping_is_true_when_the_server_answers(pool: AsyncConnectionPool) -> None:
    assert await PostgresDatabase(pool).reachable() is True


async def test_a_connection_killed_during_a_call_is_storage_unavailable_and_the_pool_recovers(
    pool: AsyncConnectionPool, clean_database: str
) -> None:
    database = PostgresDatabase(pool)
    with pytest.raises(StorageUnavailable):
        async with database.connection() as connection:
            terminate(clean_database, connection.info.backend_pid)
            await connection.execute("SELECT 1")

    assert await PostgresDatabase(pool).reachable() is True
    assert await PostgresUserRepository(database).get(uuid.uuid4()) is None


async def test_a_connection_killed_in_an_atomic_block_is_storage_unavailable_and_undone(
    pool: AsyncConnectionPool, clean_database: str
) -> None:
    database = PostgresDatabase(pool)
    users = PostgresUserRepository(database)
    user = User(uuid.uuid4(), "alice@example.com", "h", T0, T0)

    with pytest.raises(StorageUnavailable):
        async with database.atomic():
            await users.add(user)
            async with database.connection() as connection:
                terminate(clean_database, connection.info.backend_pid)
            await users.get(user.id)

    assert await PostgresDatabase(pool).reachable() is True
    assert await users.get(user.id) is None
    async with database.atomic():  # blocks work again
        assert await users.add(user) == user
    assert await users.get(user.id) == user


async def test_an_idle_connection_killed_by_the_server_is_replaced_before_use(
    one_connection_pool: AsyncConnectionPool, clean_database: str
) -> None:
    pool = one_connection_pool
    async with pool.connection() as connection:
        pid = connection.info.backend_pid
    terminate(clean_database, pid)
    await wait_until_readable(connection)  # the server has closed its end

    # The check sees the closed socket and has the pool replace the connection: the call
    # succeeds rather than failing on the dead one.
    database = PostgresDatabase(pool)
    assert await PostgresUserRepository(database).get(uuid.uuid4()) is None
    assert pool.get_stats().get("connections_lost", 0) == 1
    async with database.connection() as replacement:
        assert replacement.info.backend_pid != pid
    assert await PostgresDatabase(pool).reachable() is True


async def test_a_healthy_idle_connection_is_lent_without_a_round_trip(
    one_connection_pool: AsyncConnectionPool, clean_database: str
) -> None:
    pool = one_connection_pool
    async with pool.connection() as connection:
        pid = connection.info.backend_pid
        await connection.execute("SELECT 'the last statement before going idle'")
    idle = activity(clean_database, pid)
    assert idle[:2] == ("SELECT 'the last statement before going idle'", "idle")

    async with pool.connection() as lent:  # the pool's check ran
        assert lent.info.backend_pid == pid
        assert activity(clean_database, pid) == idle, "the check sent the server something"

        # What a round-trip check (psycopg_pool's own) would have shown.
        await AsyncConnectionPool.check_connection(lent)
        checked = activity(clean_database, pid)
        assert checked[0] == ""
        assert checked[2] > idle[2]

    assert pool.get_stats().get("connections_lost", 0) == 0


async def test_a_healthy_connection_the_server_spoke_on_gets_a_round_trip_check_and_is_kept(
    one_connection_pool: AsyncConnectionPool, clean_database: str
) -> None:
    pool = one_connection_pool
    async with pool.connection() as connection:
        pid = connection.info.backend_pid
        await connection.execute("LISTEN todo_api_test")
    with psycopg.connect(clean_database, autocommit=True) as admin:
        admin.execute("NOTIFY todo_api_test")
    await wait_until_readable(connection)  # the notification waits in the socket
    idle = activity(clean_database, pid)

    async with pool.connection() as lent:
        assert lent.info.backend_pid == pid  # checked, found alive, kept
        checked = activity(clean_database, pid)

    assert checked[0] == ""  # the empty statement of psycopg_pool's check_connection
    assert checked[2] > idle[2]
    assert pool.get_stats().get("connections_lost", 0) == 0


def connection_options(connection: psycopg.AsyncConnection[Any]) -> dict[str, str]:
    """The libpq options the connection was made with."""
    return {
        option.keyword.decode(): option.val.decode()
        for option in connection.pgconn.info
        if option.val is not None
    }


@pytest.mark.parametrize("url_sets_idle", [False, True], ids=["default", "url-sets-idle"])
async def test_pooled_connections_keep_alive_unless_the_url_says_otherwise(
    clean_database: str, url_sets_idle: bool
) -> None:
    url = make_conninfo(clean_database, keepalives_idle="7") if url_sets_idle else clean_database
    async with (
        opened_pool(url, min_size=1, max_size=1) as pool,
        pool.connection() as connection,
    ):
        options = connection_options(connection)

    assert options["keepalives"] == "1"
    assert options["keepalives_idle"] == ("7" if url_sets_idle else "30")
    assert (options["keepalives_interval"], options["keepalives_count"]) == ("10", "3")


def test_a_malformed_url_makes_a_pool_that_fails_to_connect_not_a_crash() -> None:
    assert create_pool("postgresql://[::1", min_size=1, max_size=1) is not None


async def test_an_atomic_block_commits_on_success_and_rolls_back_on_error(
    pool: AsyncConnectionPool,
) -> None:
    database = PostgresDatabase(pool)
    kept, dropped = uuid.uuid4(), uuid.uuid4()
    insert = "INSERT INTO users (id, email, password_hash) VALUES (%s, %s, 'h')"
    async with database.atomic(), database.connection() as connection:
        await connection.execute(insert, (kept, "kept@example.com"))

    with pytest.raises(ZeroDivisionError):  # not a storage problem: passed through untouched
        async with database.atomic(), database.connection() as connection:
            await connection.execute(insert, (dropped, "dropped@example.com"))
            _ = 1 / 0

    users = PostgresUserRepository(database)
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


# --- waiting for a connection ---------------------------------------------------------------


async def test_requests_beyond_the_pool_wait_in_turn_and_are_all_served(
    clean_database: str,
) -> None:
    """Twelve statements on two connections: each waits for one, in the order they came, and
    the pool is never asked for more than it has (nothing waits inside psycopg_pool)."""
    async with opened_pool(clean_database, min_size=2, max_size=2, timeout=10) as pool:
        database = PostgresDatabase(pool)
        served: list[int] = []
        waiting_seen: list[int] = []

        async def statement(number: int) -> None:
            async with database.connection() as connection:
                waiting_seen.append(database.waiting)
                served.append(number)
                await connection.execute("SELECT pg_sleep(0.02)")

        await asyncio.gather(*(statement(number) for number in range(12)))

        assert served == list(range(12))
        # Ten waited; the first of them to get its turn left nine behind it. They waited in
        # the line: the pool's own queue was never used.
        assert max(waiting_seen) == 9
        assert pool.get_stats().get("requests_queued", 0) == 0
        assert database.waiting == 0


async def test_a_request_that_gives_up_waiting_leaves_its_turn_to_the_next(
    clean_database: str,
) -> None:
    async with opened_pool(clean_database, min_size=1, max_size=1, timeout=10) as pool:
        database = PostgresDatabase(pool)
        release = asyncio.Event()

        async def holder() -> None:
            async with database.connection():
                await release.wait()

        async def waiter() -> None:
            async with database.connection() as connection:
                await connection.execute("SELECT 1")

        holding = asyncio.create_task(holder())
        await asyncio.sleep(0)
        impatient = asyncio.create_task(waiter())
        patient = asyncio.create_task(waiter())
        await asyncio.sleep(0.05)
        assert database.waiting == 2
        impatient.cancel()  # a client that went away
        release.set()
        await asyncio.wait_for(patient, timeout=5)
        await holding
        assert impatient.cancelled()
        assert database.waiting == 0
        assert pool.get_stats().get("requests_queued", 0) == 0
        # The connection is free again for the next one, at once.
        async with asyncio.timeout(1), database.connection() as connection:
            await connection.execute("SELECT 1")


async def test_waiting_past_the_pool_timeout_is_storage_unavailable_and_frees_nothing_twice(
    clean_database: str,
) -> None:
    async with opened_pool(clean_database, min_size=1, max_size=1, timeout=0.2) as pool:
        database = PostgresDatabase(pool)
        async with database.connection():
            started = time.monotonic()
            with pytest.raises(StorageUnavailable):
                async with database.connection():
                    pass
            assert 0.15 < time.monotonic() - started < 2
            assert database.waiting == 0
            assert await database.reachable(timeout=0.1) is False  # no connection free
        # One connection, lent again once given back; a second borrower still waits, in the
        # line: had a turn been handed back twice, it would have got past the line and
        # waited in the pool's own queue instead.
        async with database.connection():
            with pytest.raises(StorageUnavailable):
                async with database.connection():
                    pass
        assert await database.reachable() is True
        assert pool.get_stats().get("requests_queued", 0) == 0


async def test_beyond_max_waiting_a_request_is_refused_at_once_as_busy(
    clean_database: str,
) -> None:
    async with opened_pool(
        clean_database, min_size=1, max_size=1, timeout=10, max_waiting=2
    ) as pool:
        database = PostgresDatabase(pool)
        release = asyncio.Event()

        async def borrower() -> None:
            async with database.connection():
                await release.wait()

        tasks = [asyncio.create_task(borrower()) for _ in range(3)]  # one holds, two wait
        await asyncio.sleep(0.05)
        assert database.waiting == 2
        started = time.monotonic()
        with pytest.raises(ServerBusy):
            async with database.connection():
                pass
        assert time.monotonic() - started < 1
        release.set()
        await asyncio.gather(*tasks)
        assert database.waiting == 0
