"""What the integration tests share."""

import asyncio
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

from psycopg_pool import AsyncConnectionPool

from adapters.postgres.pool import PostgresDatabase, create_pool, open_pool
from application.ports import Caller
from domain.users import User

SESSION = ("statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout")
"""The timeouts todo-api sets on its sessions."""


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


def caller_of(user: User | UUID) -> Caller:
    """A caller acting for the user without a token (as the command line does)."""
    user_id = user.id if isinstance(user, User) else user
    return Caller(user_id=user_id, token_key=None, issued_at=datetime.now(UTC))


R = TypeVar("R")


class Background:
    """Tasks a test starts; those a failed assertion left waiting are cancelled at its end,
    so that they give their connections back before the pool closes."""

    def __init__(self) -> None:
        self._tasks: list[asyncio.Task[Any]] = []

    def start(self, coroutine: Coroutine[Any, Any, R]) -> asyncio.Task[R]:
        task = asyncio.create_task(coroutine)
        self._tasks.append(task)
        return task

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def execute(database: PostgresDatabase, statement: str, *params: Any) -> list[Any]:
    """The rows of one statement, through the database as a repository runs it."""
    async with database.connection() as connection:
        cursor = await connection.execute(statement, params or None)
        return await cursor.fetchall() if cursor.description else []


async def show(database: PostgresDatabase, *names: str) -> list[str]:
    """The session's settings, each a statement: through a pooler, maybe each a session."""
    return [str((await execute(database, f"SHOW {name}"))[0][0]) for name in names]
