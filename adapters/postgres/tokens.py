"""Logged-out tokens, and what a token's subject leads to, in raw SQL."""

from datetime import datetime
from uuid import UUID

from psycopg import sql

from adapters.postgres.pool import PostgresDatabase
from adapters.postgres.rows import USER_FIELDS, beside, build_user, columns
from application.ports import TokenSubject

# One row whatever is found: the revocation and the user, in one round trip.
_SUBJECT = (
    sql.SQL("""SELECT EXISTS (SELECT FROM revoked_tokens WHERE token_key = %(key)s) AS revoked,
                      {}
               FROM (SELECT) AS one
               LEFT JOIN users ON users.id = %(id)s""")
    .format(columns(USER_FIELDS, "users"))
    .as_bytes(None)
)
SUBJECT_ROW = beside(("revoked",), build_user)


class PostgresRevocationStore:
    def __init__(self, database: PostgresDatabase) -> None:
        self._database = database

    async def revoke(self, token_key: str, expires_at: datetime) -> None:
        async with self._database.connection() as connection:
            await connection.execute(
                """INSERT INTO revoked_tokens (token_key, expires_at)
                   VALUES (%(key)s, %(expires_at)s)
                   ON CONFLICT (token_key) DO NOTHING""",
                {"key": token_key, "expires_at": expires_at},
            )

    async def purge_expired(self, now: datetime) -> int:
        async with self._database.connection() as connection:
            cursor = await connection.execute(
                "DELETE FROM revoked_tokens WHERE expires_at < %(now)s", {"now": now}
            )
            return cursor.rowcount


class PostgresTokenSubjects:
    def __init__(self, database: PostgresDatabase) -> None:
        self._database = database

    async def find(self, user_id: UUID, token_key: str) -> TokenSubject:
        async with (
            self._database.connection() as connection,
            connection.cursor(row_factory=SUBJECT_ROW) as cursor,
        ):
            await cursor.execute(_SUBJECT, {"id": user_id, "key": token_key})
            found = await cursor.fetchone()
        assert found is not None
        (revoked,), user = found
        return TokenSubject(user=user, token_revoked=revoked)
