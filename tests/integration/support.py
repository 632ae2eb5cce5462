"""What the integration tests share."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from psycopg_pool import AsyncConnectionPool

from adapters.postgres.pool import create_pool, open_pool


@asynccontextmanager
async def opened_pool(
    url: str, *, open_timeout: float = 5.0, **options: Any
) -> AsyncIterator[AsyncConnectionPool]:
    """The service's pool (create_pool's options), open with its connections made, for the
    block; closed after it."""
    pool = create_pool(url, **options)
    await open_pool(pool, wait=True, timeout=open_timeout)
    try:
        yield pool
    finally:
        await pool.close()
