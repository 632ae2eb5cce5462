"""The connection pool, transactions over it, and the database error policy: what the
application is told of a failed statement or connection (StorageUnavailable, StatementTimedOut,
TransactionConflict, ServerBusy), and the blocks run once more after a conflict."""

import asyncio
import logging
import random
import select
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, TypeVar

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool, PoolTimeout, TooManyRequests
from psycopg_pool.base import AttemptWithBackoff

from adapters.postgres.sessions import (
    DEFAULT_TIMEOUTS,
    REFUSED,
    Timeouts,
    refuses_options,
    session_parameters,
    without_options,
)
from application.errors import (
    ServerBusy,
    StatementTimedOut,
    StorageUnavailable,
    TransactionConflict,
)

log = logging.getLogger("todo_api.database")
_T = TypeVar("_T")
RETRY_DELAY_SECONDS = (0.02, 0.1)
"""How long atomically() waits before it runs a block again after a conflict, at random."""


# psycopg_pool retries a lost connection after 1 s, then doubling each time: after a ten
# second outage it would wait eight more before trying again. A steady half-second keeps
# the service's recovery within a second or two of the database's.
AttemptWithBackoff.INITIAL_DELAY = 0.5
AttemptWithBackoff.DELAY_BACKOFF = 1.0


# TCP keepalives, unless the URL sets its own: an idle pooled connection then keeps a NAT or a
# load balancer from silently forgetting it, and one whose peer has gone away errors out within
# about a minute (its socket then polls readable, and the pool's check replaces it) rather than
# failing the request that borrows it. libpq ignores them on Unix sockets.
KEEPALIVES = {
    "keepalives": "1",
    "keepalives_idle": "30",
    "keepalives_interval": "10",
    "keepalives_count": "3",
}


def _keepalives_missing_from(url: str) -> dict[str, str]:
    try:
        given = conninfo_to_dict(url)
    except psycopg.ProgrammingError:  # a malformed URL: connecting will say so
        return {}
    return {name: value for name, value in KEEPALIVES.items() if name not in given}


# PgBouncer's default port, Supavisor's (Supabase) transaction-mode port; and the host name
# mark of Neon's pooled endpoints (ep-name-pooler.region...) and Supabase's poolers.
POOLER_PORTS = frozenset({"6432", "6543"})
POOLER_HOST_MARK = "pooler"


def pooler_in(url: str) -> str | None:
    """What in the URL suggests a connection pooler ("port 6432"), or None. A guess from the
    address alone: a pooler elsewhere goes unnoticed, and a plain server there is suspected."""
    try:
        given = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return None
    for host in str(given.get("host") or "").split(","):
        if POOLER_HOST_MARK in host.lower() and not host.startswith("/"):
            return f"host {host}"
    for port in str(given.get("port") or "").split(","):
        if port.strip() in POOLER_PORTS:
            return f"port {port.strip()}"
    return None


def create_pool(
    url: str,
    *,
    min_size: int = 5,
    max_size: int = 15,
    timeout: float = 5.0,
    prepare_threshold: int | None = 5,
    max_waiting: int = 64,
    timeouts: Timeouts | None = DEFAULT_TIMEOUTS,
) -> AsyncConnectionPool:
    """A pool, not yet open: open it in the application's start-up, close it on shutdown.

    A statement run prepare_threshold times on a connection is prepared server-side from
    then on; None never prepares, for poolers in transaction mode (PgBouncer, Neon's pooled
    endpoint) that cannot keep prepared statements. Past max_waiting requests queued for a
    connection, more are refused at once (ServerBusy) rather than left to time out.

    Every connection names the application and sets the timeouts in its startup packet;
    timeouts None sends the name only, for a URL through a pooler that refuses them there
    (the role's defaults then carry them: see adapters/postgres/sessions.py)."""
    return AsyncConnectionPool(
        url,
        connection_class=_SessionConnection,
        min_size=min_size,
        max_size=max_size,
        timeout=timeout,
        max_waiting=max_waiting,
        kwargs={
            "prepare_threshold": prepare_threshold,
            "autocommit": True,
            **_keepalives_missing_from(url),
            **session_parameters(url, timeouts),
        },
        configure=_in_utc,
        check=check_if_closed_by_server,
        open=False,
        name="todo-api",
    )


class _SessionConnection(psycopg.AsyncConnection[Any]):
    """A connection that a server refusing our options startup parameter (a pooler we were not
    told of) gets without them, rather than no connection at all; a warning says so."""

    @classmethod
    async def connect(cls, conninfo: str = "", **kwargs: Any) -> Self:
        if conninfo in REFUSED:
            kwargs = without_options(kwargs)
        try:
            return await super().connect(conninfo, **kwargs)
        except psycopg.OperationalError as error:
            if "options" not in kwargs or not refuses_options(error):
                raise
            REFUSED.add(conninfo, error)
        return await super().connect(conninfo, **without_options(kwargs))


async def _in_utc(connection: psycopg.AsyncConnection[Any]) -> None:
    # Timestamps then arrive in UTC, as the domain keeps them, with no conversion per value.
    # (A pooler that does not keep the setting costs only that conversion.)
    await connection.execute("SET TIME ZONE 'UTC'")


async def check_if_closed_by_server(connection: psycopg.AsyncConnection[Any]) -> None:
    """The pool's check of a connection before lending it: a round trip only when the server
    has closed it or spoken since it went idle.

    A server restart or an idle timeout on a managed database closes connections while they
    wait in the pool; the closed socket then polls readable, at the cost of one system call
    rather than a round trip on every request. Whatever else makes it readable (a notice)
    gets the full check, which fails on a dead connection and so has the pool replace it."""
    poller = select.poll()
    poller.register(connection.fileno(), select.POLLIN | select.POLLERR | select.POLLHUP)
    if poller.poll(0):
        await AsyncConnectionPool.check_connection(connection)


async def open_pool(pool: AsyncConnectionPool, *, wait: bool, timeout: float) -> None:  # noqa: ASYNC109
    """Opens the pool. With wait, fails with StorageUnavailable when no connection can be made
    within the timeout; without, connects in the background and lets requests answer 503."""
    try:
        await pool.open(wait=wait, timeout=timeout)
    except PoolTimeout as error:
        await pool.close()
        raise StorageUnavailable() from (await _why_connecting_fails(pool) or error)


async def _why_connecting_fails(pool: AsyncConnectionPool) -> psycopg.OperationalError | None:
    # The pool's timeout says only that it gave up; one more attempt says why (a refused
    # connection, a certificate that does not verify, a wrong password).
    conninfo, kwargs = pool.conninfo, pool.kwargs
    if not isinstance(conninfo, str) or not isinstance(kwargs, dict):
        return None  # not a pool of create_pool()
    try:
        connection = await pool.connection_class.connect(conninfo, **kwargs)
    except psycopg.OperationalError as error:
        return error
    await connection.close()
    return None


class PostgresDatabase:
    """Where the repositories run their SQL.

    Outside atomic(), each repository call borrows a pooled connection for its statement
    (autocommit: a single statement is its own transaction, with no BEGIN and COMMIT round
    trips). Inside atomic(), every call made by the same asyncio task shares one connection
    and one transaction, committed when the block ends and rolled back when it raises (tasks
    it starts borrow connections of their own)."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool
        self._line = _WaitingLine(pool)
        # The block's task with its connection: a task started inside a block inherits the
        # variable, and must not use the connection once the block has given it back.
        self._held: ContextVar[_Held | None] = ContextVar(
            f"postgres-transaction-{id(self)}", default=None
        )

    def _held_connection(self) -> psycopg.AsyncConnection[Any] | None:
        held = self._held.get()
        return held.connection if held and held.task is asyncio.current_task() else None

    def connection(self) -> "_Connection":
        """The atomic block's connection, or a pooled one for the block."""
        return _Connection(self._line, self._held_connection())

    async def reachable(self, timeout: float = 2.0) -> bool:  # noqa: ASYNC109
        """Whether a query round-trips, within a timeout shorter than a request's: health
        checks of load balancers often give up after a few seconds. (In the line with the
        requests: a health check does not jump the queue it is meant to notice.)"""
        try:
            connection = await self._line.borrow(timeout)
            try:
                await connection.execute("SELECT 1")
            finally:
                await self._line.give_back(connection)
        except (psycopg.OperationalError, StorageUnavailable, ServerBusy):
            return False
        return True

    @property
    def waiting(self) -> int:
        """Requests waiting for a connection."""
        return self._line.waiting + self.pool.get_stats().get("requests_waiting", 0)

    @asynccontextmanager
    async def atomic(self) -> AsyncIterator[None]:
        held = self._held_connection()
        if held is not None:  # nested: a savepoint
            with _translated_failures():
                async with held.transaction():
                    yield
            return
        connection = await self._line.borrow()
        try:
            with _translated_failures():
                async with connection.transaction():
                    token = self._held.set(_Held(asyncio.current_task(), connection))
                    try:
                        yield
                    finally:
                        self._held.reset(token)
        finally:
            await self._line.give_back(connection)

    async def atomically(self, work: Callable[[], Awaitable[_T]]) -> _T:
        """work() in one atomic block; after a TransactionConflict (a deadlock, a serialization
        failure: the database rolled the whole transaction back), once more in a fresh block,
        and a second conflict is raised.

        Inside a block already open, work() runs in a savepoint of it and is not run again: the
        outer transaction keeps the locks and the snapshot that met the other one's, so only
        the outermost block, run again from its start, can get past the conflict."""
        if self._held_connection() is not None:
            async with self.atomic():
                return await work()
        try:
            async with self.atomic():
                return await work()
        except TransactionConflict as conflict:
            log.info(
                "database transaction conflict, running it once more: %s",
                conflict.__cause__ or conflict,
            )
        # A moment for the transaction that won to take the locks it waited for: run at once,
        # the second run can take them first and deadlock with it again (seen in the tests).
        await asyncio.sleep(random.uniform(*RETRY_DELAY_SECONDS))  # noqa: S311 - not a secret
        async with self.atomic():
            return await work()


@dataclass(frozen=True, slots=True)
class _Held:
    task: "asyncio.Task[Any] | None"
    connection: psycopg.AsyncConnection[Any]


class _WaitingLine:
    """Where requests wait, first come first served, for one of the pool's connections, within
    the pool's bounds: beyond max_waiting of them, ServerBusy at once; after its timeout,
    StorageUnavailable.

    The pool would queue them itself, but its queue costs a task, a timer and two locks per
    waiting request (asyncio.wait_for over a condition), and a busy process pays that on most
    requests: with 32 requests at once on 15 connections, a third of its throughput (issue 13).
    Here a waiting request costs a future, and the pool is only asked once one of its
    connections is free, or it is still opening them."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool
        # Bounded: a turn handed back twice would raise rather than let one borrower too many in.
        self._free = asyncio.BoundedSemaphore(pool.max_size)
        self.waiting = 0

    async def borrow(self, timeout: float | None = None) -> psycopg.AsyncConnection[Any]:  # noqa: ASYNC109
        timeout = self._pool.timeout if timeout is None else timeout
        if self._free.locked():
            if self._pool.max_waiting and self.waiting >= self._pool.max_waiting:
                raise ServerBusy(retry_after_seconds=1)
            started = time.monotonic()
            self.waiting += 1
            try:
                async with asyncio.timeout(timeout):
                    await self._free.acquire()
            except TimeoutError:
                raise StorageUnavailable() from None
            finally:
                self.waiting -= 1
            timeout -= time.monotonic() - started
        else:
            await self._free.acquire()  # at once
        try:
            return await self._pool.getconn(timeout=max(timeout, 0.001))
        except BaseException as error:
            self._free.release()
            if isinstance(error, Exception):
                raise _translated(error) from error
            raise

    async def give_back(self, connection: psycopg.AsyncConnection[Any]) -> None:
        try:
            await self._pool.putconn(connection)
        except Exception as error:
            raise _translated(error) from error
        finally:
            self._free.release()


class _Connection:
    """`async with` gives the atomic block's connection, or one borrowed for the block and
    handed back after it. Written as a class rather than with generator-based context
    managers, because every statement outside a block passes here. (Without the connection's
    own `async with`: on an autocommit connection its commit has nothing to do, and the pool
    rolls back or replaces a connection returned mid-transaction or broken.)"""

    __slots__ = ("_borrowed", "_connection", "_line")

    def __init__(self, line: _WaitingLine, held: psycopg.AsyncConnection[Any] | None) -> None:
        self._line = line
        self._connection = held
        self._borrowed = held is None

    async def __aenter__(self) -> psycopg.AsyncConnection[Any]:
        if self._connection is None:
            self._connection = await self._line.borrow()
        return self._connection

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._borrowed and self._connection is not None:
            connection, self._connection = self._connection, None  # handed back once only
            await self._line.give_back(connection)
        if isinstance(exc, Exception) and (translated := _translated(exc)) is not exc:
            raise translated from exc


def _translated(error: Exception) -> Exception:
    """What the application is told of a failure of the pool, the connection or a statement
    that is no fault of the request's (those stay as they are, for the repositories)."""
    if isinstance(error, TooManyRequests):
        return ServerBusy(retry_after_seconds=1)
    if isinstance(error, psycopg.OperationalError):
        if (error.sqlstate or "").startswith("40"):  # transaction rollback: nothing took effect
            return TransactionConflict(retry_after_seconds=1)
        if isinstance(error, psycopg.errors.LockNotAvailable) or _timed_out(error):
            return StatementTimedOut()
        return StorageUnavailable()
    if isinstance(error, _SESSION_ENDED | PoolTimeout):
        return StorageUnavailable()
    return error


# The server ends a session whose transaction idled or lasted too long, and closes its
# connection: the pool replaces it. (Not OperationalErrors, but InternalErrors, in psycopg.)
_SESSION_ENDED = psycopg.errors.IdleInTransactionSessionTimeout | psycopg.errors.TransactionTimeout


def _timed_out(error: psycopg.OperationalError) -> bool:
    # QueryCanceled is also a cancel by an operator (pg_cancel_backend) or by the client; only
    # the message tells statement_timeout apart (an English one: lc_messages is the server's).
    return isinstance(error, psycopg.errors.QueryCanceled) and "statement timeout" in str(
        error.diag.message_primary or error
    )


@contextmanager
def _translated_failures() -> Iterator[None]:
    try:
        yield
    except Exception as error:
        if (translated := _translated(error)) is not error:
            raise translated from error
        raise
