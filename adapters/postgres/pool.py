"""The connection pool, and the translation of connection failures into StorageUnavailable."""

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout, TooManyRequests
from psycopg_pool.base import AttemptWithBackoff

from application.errors import ServerBusy, StorageUnavailable

# psycopg_pool retries a lost connection after 1 s, then doubling each time: after a ten
# second outage it would wait eight more before trying again. A steady half-second keeps
# the service's recovery within a second or two of the database's.
AttemptWithBackoff.INITIAL_DELAY = 0.5
AttemptWithBackoff.DELAY_BACKOFF = 1.0


def create_pool(
    url: str,
    *,
    min_size: int = 5,
    max_size: int = 15,
    timeout: float = 5.0,
    prepare_threshold: int | None = 5,
    max_waiting: int = 64,
) -> AsyncConnectionPool:
    """A pool, not yet open: open it in the application's start-up, close it on shutdown.

    A statement run prepare_threshold times on a connection is prepared server-side from
    then on; None never prepares, for poolers in transaction mode (PgBouncer, Neon's pooled
    endpoint) that cannot keep prepared statements. Past max_waiting requests queued for a
    connection, more are refused at once (ServerBusy) rather than left to time out."""
    return AsyncConnectionPool(
        url,
        min_size=min_size,
        max_size=max_size,
        timeout=timeout,
        max_waiting=max_waiting,
        kwargs={"prepare_threshold": prepare_threshold},
        # A server restart or an idle timeout on a managed database kills connections silently.
        check=AsyncConnectionPool.check_connection,
        open=False,
        name="todo-api",
    )


async def open_pool(pool: AsyncConnectionPool, *, wait: bool, timeout: float) -> None:  # noqa: ASYNC109
    """Opens the pool. With wait, fails with StorageUnavailable when no connection can be made
    within the timeout; without, connects in the background and lets requests answer 503."""
    try:
        await pool.open(wait=wait, timeout=timeout)
    except PoolTimeout as error:
        await pool.close()
        raise StorageUnavailable() from error


class UnitOfWork:
    """One connection and one transaction for several repository calls. The connection is
    taken from the pool at the first call only, so work that never reaches the database
    (a refused token, say) never waits for one."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool
        self._held = AsyncExitStack()
        self._connection: psycopg.AsyncConnection[Any] | None = None

    async def connection(self) -> psycopg.AsyncConnection[Any]:
        connection = self._connection
        if connection is None:
            connection = await self._held.enter_async_context(self._pool.connection())
            assert connection is not None
            self._connection = connection
        return connection

    async def end(self, error: BaseException | None) -> None:
        """Commits (no error) or rolls back, and gives the connection back."""
        if error is None:
            await self._held.aclose()
        else:
            await self._held.__aexit__(type(error), error, error.__traceback__)


Database = AsyncConnectionPool | UnitOfWork
"""Where repositories run their SQL: the pool (a connection and a transaction for each call),
or a unit of work (one transaction across calls, ended by its owner)."""


@asynccontextmanager
async def unit_of_work(pool: AsyncConnectionPool) -> AsyncIterator[UnitOfWork]:
    """Committed when the block succeeds, rolled back when it raises."""
    work = UnitOfWork(pool)
    try:
        try:
            yield work
        except BaseException as error:
            await work.end(error)
            raise
        await work.end(None)
    except TooManyRequests as error:
        raise ServerBusy(retry_after_seconds=1) from error
    except (psycopg.OperationalError, PoolTimeout) as error:
        raise StorageUnavailable() from error


@asynccontextmanager
async def transaction(database: Database) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """From the pool: a transaction committed when the block succeeds, rolled back when it
    raises. In a unit of work: the unit's transaction, which its owner ends."""
    try:
        if isinstance(database, AsyncConnectionPool):
            async with database.connection() as connection:
                yield connection
        else:
            yield await database.connection()
    except TooManyRequests as error:
        raise ServerBusy(retry_after_seconds=1) from error
    except (psycopg.OperationalError, PoolTimeout) as error:
        raise StorageUnavailable() from error


async def ping(pool: AsyncConnectionPool, timeout: float = 2.0) -> bool:  # noqa: ASYNC109
    """Whether a query round-trips, within a timeout shorter than a request's: health checks
    of load balancers often give up after a few seconds."""
    try:
        async with pool.connection(timeout=timeout) as connection:
            await connection.execute("SELECT 1")
    except (psycopg.OperationalError, PoolTimeout, TooManyRequests):
        return False
    return True
