"""Fixtures of the integration tests that several of their modules use (a module may define
its own of the same name, which then wins)."""

from collections.abc import AsyncIterator

import pytest
from psycopg_pool import AsyncConnectionPool

from adapters.postgres.pool import PostgresDatabase
from tests.integration.support import Background, opened_pool


@pytest.fixture
async def pool(clean_database: str) -> AsyncIterator[AsyncConnectionPool]:
    async with opened_pool(clean_database, min_size=2, max_size=2, timeout=5) as pool:
        yield pool


@pytest.fixture
def database(pool: AsyncConnectionPool) -> PostgresDatabase:
    return PostgresDatabase(pool)


@pytest.fixture
async def background() -> AsyncIterator[Background]:
    tasks = Background()
    try:
        yield tasks
    finally:
        await tasks.stop()
