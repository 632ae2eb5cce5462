"""Accounts linked to Better Auth identities, in raw SQL over psycopg 3."""

from uuid import UUID

from adapters.postgres.pool import PostgresDatabase
from adapters.postgres.repositories import USER_COLUMNS, user_of
from application.ports import TokenSubject


class PostgresLinkedIdentities:
    def __init__(self, database: PostgresDatabase) -> None:
        self._database = database

    async def find(self, issuer: str, subject: str, token_key: str) -> TokenSubject:
        # One row whatever is found: the revocation, the link and its account, one round trip.
        async with self._database.connection() as connection:
            cursor = await connection.execute(
                f"""SELECT EXISTS (SELECT FROM revoked_tokens WHERE token_key = %(key)s),
                           {USER_COLUMNS}
                    FROM (SELECT) AS one
                    LEFT JOIN linked_identities AS link
                           ON link.issuer = %(issuer)s AND link.subject = %(subject)s
                    LEFT JOIN users ON users.id = link.user_id""",
                {"issuer": issuer, "subject": subject, "key": token_key},
            )
            row = await cursor.fetchone()
        assert row is not None
        revoked, *user = row
        return TokenSubject(user=None if user[0] is None else user_of(user), token_revoked=revoked)

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
