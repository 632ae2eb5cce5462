"""What the integration tests share."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from psycopg_pool import AsyncConnectionPool

from adapters.postgres.pool import create_pool, open_pool
from application.ports import Caller
from domain.users import User


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
