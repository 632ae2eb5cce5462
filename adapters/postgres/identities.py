"""Accounts linked to Better Auth identities, in raw SQL over psycopg 3."""

from uuid import UUID

from psycopg import sql

from adapters.postgres.pool import PostgresDatabase
from adapters.postgres.rows import USER_FIELDS, columns
from adapters.postgres.tokens import SUBJECT_ROW
from application.ports import TokenSubject

# One row whatever is found: the revocation, the link and its account, one round trip.
_FIND = (
    sql.SQL("""SELECT EXISTS (SELECT FROM revoked_tokens WHERE token_key = %(key)s) AS revoked,
                      {}
               FROM (SELECT) AS one
               LEFT JOIN linked_identities AS link
                      ON link.issuer = %(issuer)s AND link.subject = %(subject)s
               LEFT JOIN users ON users.id = link.user_id""")
    .format(columns(USER_FIELDS, "users"))
    .as_bytes(None)
)


class PostgresLinkedIdentities:
    def __init__(self, database: PostgresDatabase) -> None:
        self._database = database

    async def find(self, issuer: str, subject: str, token_key: str) -> TokenSubject:
        async with (
            self._database.connection() as connection,
            connection.cursor(row_factory=SUBJECT_ROW) as cursor,
        ):
            await cursor.execute(_FIND, {"issuer": issuer, "subject": subject, "key": token_key})
            found = await cursor.fetchone()
        assert found is not None
        (revoked,), user = found
        return TokenSubject(user=user, token_revoked=revoked)

    async def account_of(self, issuer: str, subject: str) -> UUID | None:
        async with self._database.connection() as connection:
            cursor = await connection.execute(
                """SELECT user_id FROM linked_identities
                   WHERE issuer = %(issuer)s AND subject = %(subject)s""",
                {"issuer": issuer, "subject": subject},
            )
            row = await cursor.fetchone()
        return None if row is None else row[0]

    async def link(self, issuer: str, subject: str, user_id: UUID) -> UUID:
        async with self._database.connection() as connection:
            inserted = await connection.execute(
                """INSERT INTO linked_identities (issuer, subject, user_id)
                   VALUES (%(issuer)s, %(subject)s, %(user_id)s)
                   ON CONFLICT (issuer, subject) DO NOTHING
                   RETURNING user_id""",
                {"issuer": issuer, "subject": subject, "user_id": user_id},
            )
            if await inserted.fetchone() is not None:
                return user_id
        # A statement of its own: it sees the concurrent link that the insert waited for.
        linked = await self.account_of(issuer, subject)
        assert linked is not None
        return linked

    async def is_linked(self, user_id: UUID) -> bool:
        async with self._database.connection() as connection:
            cursor = await connection.execute(
                "SELECT EXISTS (SELECT FROM linked_identities WHERE user_id = %(id)s)",
                {"id": user_id},
            )
            row = await cursor.fetchone()
        return bool(row and row[0])
