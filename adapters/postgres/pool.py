"""The connection pool, and the translation of connection failures into StorageUnavailable."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from application.errors import StorageUnavailable


def create_pool(
    url: str, *, min_size: int = 5, max_size: int = 15, timeout: float = 5.0
) -> AsyncConnectionPool:
    """A pool, not yet open: open it in the application's start-up, close it on shutdown."""
    return AsyncConnectionPool(
        url,
        min_size=min_size,
        max_size=max_size,
        timeout=timeout,
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


@asynccontextmanager
async def transaction(pool: AsyncConnectionPool) -> AsyncIterator[psycopg.AsyncConnection]:
    """One transaction: committed when the block succeeds, rolled back when it raises."""
    try:
        async with pool.connection() as connection:
            yield connection
    except (psycopg.OperationalError, PoolTimeout) as error:
        raise StorageUnavailable() from error


async def ping(pool: AsyncConnectionPool) -> bool:
    try:
        async with transaction(pool) as connection:
            await connection.execute("SELECT 1")
    except StorageUnavailable:
        return False
    return True
