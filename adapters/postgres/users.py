"""The user repository in raw SQL."""

from datetime import datetime
from uuid import UUID

import psycopg
from psycopg import sql

from adapters.postgres.pool import PostgresDatabase
from adapters.postgres.rows import USER_FIELDS, columns, user_row
from domain.errors import EmailAlreadyRegistered
from domain.users import User

_COLUMNS = columns(USER_FIELDS)

# ON CONFLICT rather than a caught unique violation, which would abort the transaction the
# insert may be part of (linking a Better Auth identity goes on after it).
_ADD = (
    sql.SQL("""INSERT INTO users ({columns})
               VALUES (%(id)s, %(email)s, %(password_hash)s, %(created_at)s, %(updated_at)s,
                       %(tokens_valid_after)s, %(token_generation)s, %(timezone)s)
               ON CONFLICT DO NOTHING
               RETURNING {columns}""")
    .format(columns=_COLUMNS)
    .as_bytes(None)
)
_GET = sql.SQL("SELECT {} FROM users WHERE id = %(id)s").format(_COLUMNS).as_bytes(None)
_GET_BY_EMAIL = (
    sql.SQL("SELECT {} FROM users WHERE lower(email) = lower(%(email)s)")
    .format(_COLUMNS)
    .as_bytes(None)
)
# One statement: the row lock orders concurrent cut-offs, and each one counts.
_CUT_OFF = (
    sql.SQL("""UPDATE users
               SET token_generation = token_generation + 1,
                   tokens_valid_after = greatest(tokens_valid_after, %(moment)s),
                   password_hash = coalesce(%(password_hash)s, password_hash)
               WHERE id = %(id)s
               RETURNING {}""")
    .format(_COLUMNS)
    .as_bytes(None)
)

_CHANGE_TIMEZONE = (
    sql.SQL("UPDATE users SET timezone = %(timezone)s WHERE id = %(id)s RETURNING {}")
    .format(_COLUMNS)
    .as_bytes(None)
)


class PostgresUserRepository:
    def __init__(self, database: PostgresDatabase) -> None:
        self._database = database

    async def add(self, user: User) -> User:
        added = await self._user(
            _ADD,
            {
                "id": user.id,
                "email": user.email,
                "password_hash": user.password_hash,
                "created_at": user.created_at,
                "updated_at": user.updated_at,
                "tokens_valid_after": user.tokens_valid_after,
                "token_generation": user.token_generation,
                "timezone": user.timezone,
            },
        )
        if added is None:
            raise EmailAlreadyRegistered()
        return added

    async def get(self, user_id: UUID) -> User | None:
        return await self._user(_GET, {"id": user_id})

    async def get_by_email(self, email: str) -> User | None:
        return await self._user(_GET_BY_EMAIL, {"email": email})

    async def change_email(self, user_id: UUID, email: str) -> bool:
        try:
            async with self._database.connection() as connection:
                cursor = await connection.execute(
                    "UPDATE users SET email = %(email)s WHERE id = %(id)s",
                    {"id": user_id, "email": email},
                )
                return cursor.rowcount == 1
        except psycopg.errors.UniqueViolation:
            return False

    async def cut_off_tokens(
        self, user_id: UUID, moment: datetime, *, password_hash: str | None = None
    ) -> User | None:
        return await self._user(
            _CUT_OFF, {"id": user_id, "moment": moment, "password_hash": password_hash}
        )

    async def change_timezone(self, user_id: UUID, timezone: str) -> User | None:
        return await self._user(_CHANGE_TIMEZONE, {"id": user_id, "timezone": timezone})

    async def delete(self, user_id: UUID) -> bool:
        async with self._database.connection() as connection:
            cursor = await connection.execute(
                "DELETE FROM users WHERE id = %(id)s", {"id": user_id}
            )
            return cursor.rowcount == 1

    async def _user(self, statement: bytes, params: dict[str, object]) -> User | None:
        async with (
            self._database.connection() as connection,
            connection.cursor(row_factory=user_row) as cursor,
        ):
            await cursor.execute(statement, params)
            return await cursor.fetchone()
