"""The repositories in raw SQL over psycopg 3."""

from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID

import psycopg
from psycopg.rows import RowMaker
from psycopg.types.json import Jsonb

from adapters.postgres.pool import PostgresDatabase
from application.ports import (
    Caller,
    EarlierCreation,
    FailedLogins,
    TaskPage,
    TokenSubject,
    ensure_admitted,
)
from domain.errors import EmailAlreadyRegistered
from domain.tasks import Task, TaskPosition
from domain.users import User

_T = TypeVar("_T")

# Totals come from task_counts, which triggers keep in step with tasks (migrations 0004, 0006).
_COUNT_OF = {
    None: "SELECT total FROM task_counts WHERE user_id = %(owner_id)s",
    True: "SELECT completed FROM task_counts WHERE user_id = %(owner_id)s",
    False: "SELECT total - completed FROM task_counts WHERE user_id = %(owner_id)s",
}

USER_COLUMNS = (
    "id, email, password_hash, created_at, updated_at, tokens_valid_after, token_generation"
)
_TASK_COLUMNS = "id, user_id, title, description, completed, created_at, updated_at"


def _utc(moment: datetime) -> datetime:
    # psycopg returns timestamptz in the session's time zone, which a managed server may set.
    return moment if moment.tzinfo is UTC else moment.astimezone(UTC)


def user_of(values: Sequence[Any]) -> User:
    user_id, email, password_hash, created_at, updated_at, valid_after, generation = values
    return User(
        user_id,
        email,
        password_hash,
        _utc(created_at),
        _utc(updated_at),
        None if valid_after is None else _utc(valid_after),
        generation,
    )


def _user_row(cursor: psycopg.AsyncCursor[Any]) -> RowMaker[User]:
    return user_of


def _task(values: Sequence[Any]) -> Task:
    task_id, owner_id, title, description, completed, created_at, updated_at = values
    return Task(
        task_id, owner_id, title, description, completed, _utc(created_at), _utc(updated_at)
    )


class PostgresUserRepository:
    def __init__(self, database: PostgresDatabase) -> None:
        self._database = database

    async def add(self, user: User) -> User:
        # ON CONFLICT rather than a caught unique violation, which would abort the transaction
        # the insert may be part of (linking a Better Auth identity goes on after it).
        async with (
            self._database.connection() as connection,
            connection.cursor(row_factory=_user_row) as cursor,
        ):
            await cursor.execute(
                f"""INSERT INTO users ({USER_COLUMNS})
                    VALUES (%(id)s, %(email)s, %(password_hash)s,
                            %(created_at)s, %(updated_at)s, %(tokens_valid_after)s,
                            %(token_generation)s)
                    ON CONFLICT DO NOTHING
                    RETURNING {USER_COLUMNS}""",
                {
                    "id": user.id,
                    "email": user.email,
                    "password_hash": user.password_hash,
                    "created_at": user.created_at,
                    "updated_at": user.updated_at,
                    "tokens_valid_after": user.tokens_valid_after,
                    "token_generation": user.token_generation,
                },
            )
            added = await cursor.fetchone()
        if added is None:
            raise EmailAlreadyRegistered()
        return added

    async def get(self, user_id: UUID) -> User | None:
        async with (
            self._database.connection() as connection,
            connection.cursor(row_factory=_user_row) as cursor,
        ):
            await cursor.execute(
                f"SELECT {USER_COLUMNS} FROM users WHERE id = %(id)s", {"id": user_id}
            )
            return await cursor.fetchone()

    async def get_by_email(self, email: str) -> User | None:
        async with (
            self._database.connection() as connection,
            connection.cursor(row_factory=_user_row) as cursor,
        ):
            await cursor.execute(
                f"SELECT {USER_COLUMNS} FROM users WHERE lower(email) = lower(%(email)s)",
                {"email": email},
            )
            return await cursor.fetchone()

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
        # One statement: the row lock orders concurrent cut-offs, and each one counts.
        async with (
            self._database.connection() as connection,
            connection.cursor(row_factory=_user_row) as cursor,
        ):
            await cursor.execute(
                f"""UPDATE users
                    SET token_generation = token_generation + 1,
                        tokens_valid_after = greatest(tokens_valid_after, %(moment)s),
                        password_hash = coalesce(%(password_hash)s, password_hash)
                    WHERE id = %(id)s
                    RETURNING {USER_COLUMNS}""",
                {"id": user_id, "moment": moment, "password_hash": password_hash},
            )
            return await cursor.fetchone()

    async def delete(self, user_id: UUID) -> bool:
        async with self._database.connection() as connection:
            cursor = await connection.execute(
                "DELETE FROM users WHERE id = %(id)s", {"id": user_id}
            )
            return cursor.rowcount == 1


# The caller's verdict, read in the statement that does the work: whether the token was logged
# out, whether its user exists, and User.accepts_token spelled in SQL (a token carrying its
# generation must be of the user's current one; one without must be issued strictly after the
# last cut-off). The contract suite holds it to the same answers as the in-memory fake.
_CALLER = """caller AS (
    SELECT EXISTS (SELECT FROM revoked_tokens WHERE token_key = %(caller_token)s) AS revoked,
           users.id IS NOT NULL AS known,
           coalesce(
               CASE WHEN %(caller_generation)s::integer IS NULL
                    THEN users.tokens_valid_after IS NULL
                         OR %(caller_issued_at)s::timestamptz > users.tokens_valid_after
                    ELSE users.token_generation = %(caller_generation)s::integer
               END,
               false
           ) AS current
    FROM (SELECT) AS one
    LEFT JOIN users ON users.id = %(caller_id)s
)"""
# The work's own condition: for a refused caller it reads no task and writes nothing.
_ADMITTED = " AND (SELECT NOT revoked AND known AND current FROM caller)"


def _as_caller(work: str) -> str:
    """The statement `work` (gated by _ADMITTED) with the caller's verdict in front of each of
    its rows, and one row of verdict alone when the work has none."""
    return f"""WITH {_CALLER}, work AS ({work})
               SELECT caller.revoked, caller.known, caller.current, work.*
               FROM caller LEFT JOIN work ON true"""


def _caller_params(caller: Caller) -> dict[str, Any]:
    return {
        "caller_id": caller.user_id,
        "caller_token": caller.token_key,
        "caller_issued_at": caller.issued_at,
        "caller_generation": caller.generation,
    }


def _admitted(row: Sequence[Any] | None) -> Sequence[Any]:
    """The row's work, once its verdict admits the caller."""
    assert row is not None  # the caller CTE has exactly one row
    revoked, known, current, *work = row
    ensure_admitted(revoked=revoked, known=known, current=current)
    return work


def _gate(caller: Caller | None) -> str:
    return "" if caller is None else _ADMITTED


class PostgresTaskRepository:
    def __init__(self, database: PostgresDatabase) -> None:
        self._database = database

    async def admit(self, caller: Caller) -> None:
        async with self._database.connection() as connection:
            cursor = await connection.execute(
                f"WITH {_CALLER} SELECT revoked, known, current FROM caller",
                _caller_params(caller),
            )
            _admitted(await cursor.fetchone())

    async def add(self, task: Task, *, caller: Caller | None = None) -> Task:
        row = await self._row(
            f"""INSERT INTO tasks
                    (id, user_id, title, description, completed, created_at, updated_at)
                SELECT %(id)s, %(owner_id)s, %(title)s, %(description)s, %(completed)s,
                       %(created_at)s, %(updated_at)s
                WHERE true{_gate(caller)}
                RETURNING {_TASK_COLUMNS}""",
            {
                "id": task.id,
                "owner_id": task.owner_id,
                "title": task.title,
                "description": task.description,
                "completed": task.completed,
                "created_at": task.created_at,
                "updated_at": task.updated_at,
            },
            caller,
        )
        assert row is not None
        return _task(row)

    async def get(
        self, task_id: UUID, *, for_update: bool = False, caller: Caller | None = None
    ) -> Task | None:
        lock = " FOR UPDATE" if for_update else ""
        row = await self._row(
            f"SELECT {_TASK_COLUMNS} FROM tasks WHERE id = %(id)s{_gate(caller)}{lock}",
            {"id": task_id},
            caller,
        )
        return None if row is None else _task(row)

    async def list_for_owner(
        self,
        owner_id: UUID,
        *,
        completed: bool | None,
        limit: int,
        offset: int = 0,
        after: TaskPosition | None = None,
        caller: Caller | None = None,
    ) -> TaskPage:
        # Each filter is spelled out rather than "%(completed)s IS NULL OR ...", which would
        # hide it from the planner: the page reads the (user_id, [completed,] created_at, id)
        # index from the right place and stops after limit + 1 rows.
        where = "user_id = %(owner_id)s"
        if completed is not None:
            where += " AND completed = %(completed)s"
        if after is not None:
            where += " AND (created_at, id) < (%(after_created_at)s, %(after_id)s)"
        params = {
            "owner_id": owner_id,
            "completed": completed,
            "after_created_at": after and after.created_at,
            "after_id": after and after.id,
            "limit": limit + 1,  # one more tells whether a next page exists
            "offset": offset,
        }
        total = _COUNT_OF[completed]
        order = "ORDER BY created_at DESC, id DESC"
        if caller is not None:
            # The total rides along with the verdict, so an empty page needs no second query;
            # the join promises no order of its own, so the page's is said again.
            page = f"""SELECT {_TASK_COLUMNS} FROM tasks WHERE {where}{_ADMITTED}
                       {order} LIMIT %(limit)s OFFSET %(offset)s"""
            statement = f"""WITH {_CALLER}, page AS ({page})
                            SELECT caller.revoked, caller.known, caller.current, ({total}),
                                   page.*
                            FROM caller LEFT JOIN page ON true
                            ORDER BY page.created_at DESC, page.id DESC"""
            params |= _caller_params(caller)
        else:
            # The total rides along with the page (a subquery run once, one round trip); only
            # an empty page needs a second query for it.
            statement = f"""SELECT ({total}), {_TASK_COLUMNS} FROM tasks WHERE {where}
                            {order} LIMIT %(limit)s OFFSET %(offset)s"""
        async with (
            self._database.connection() as connection,
            # Binary rows: uuids and timestamps load from bytes, not parsed from text.
            connection.cursor(binary=True) as cursor,
        ):
            await cursor.execute(statement, params)
            rows = await cursor.fetchall()
            if caller is not None:
                counted, *first = _admitted(rows[0])
                # A first row without a task is the verdict alone: an empty page.
                tasks = [] if first[0] is None else [_task(row[4:]) for row in rows]
            elif rows:
                counted, tasks = rows[0][0], [_task(row[1:]) for row in rows]
            else:
                found = await (await connection.execute(total, params)).fetchone()
                counted, tasks = (found[0] if found else None), []
        return TaskPage(
            tasks=tasks[:limit],
            total=counted or 0,  # no row yet: the owner never had a task
            has_more=len(tasks) > limit,
        )

    async def update(
        self,
        task: Task,
        *,
        expected_versions: Collection[datetime] | None = None,
        caller: Caller | None = None,
    ) -> Task | None:
        # updated_at is not sent: the trigger moves it forward, strictly, on every update.
        # The version check sits in the WHERE clause: a concurrent writer holds the row lock,
        # and the check is made again on the row it leaves behind.
        row = await self._row(
            f"""UPDATE tasks
                SET title = %(title)s, description = %(description)s,
                    completed = %(completed)s
                WHERE id = %(id)s{_version_check(expected_versions)}{_gate(caller)}
                RETURNING {_TASK_COLUMNS}""",
            {
                "id": task.id,
                "title": task.title,
                "description": task.description,
                "completed": task.completed,
                "versions": list(expected_versions or ()),
            },
            caller,
        )
        return None if row is None else _task(row)

    async def delete(
        self,
        task_id: UUID,
        *,
        expected_versions: Collection[datetime] | None = None,
        caller: Caller | None = None,
    ) -> bool:
        row = await self._row(
            f"""DELETE FROM tasks
                WHERE id = %(id)s{_version_check(expected_versions)}{_gate(caller)}
                RETURNING true""",
            {"id": task_id, "versions": list(expected_versions or ())},
            caller,
        )
        return row is not None

    async def _row(
        self, statement: str, params: dict[str, Any], caller: Caller | None
    ) -> Sequence[Any] | None:
        """The one row of the statement, if any. With a caller, the statement (gated by
        _gate(caller)) runs behind the caller's verdict, which raises when it refuses."""
        if caller is not None:
            statement, params = _as_caller(statement), params | _caller_params(caller)
        async with self._database.connection() as connection:
            row = await (await connection.execute(statement, params)).fetchone()
        if caller is None:
            return row
        work = _admitted(row)
        return None if work[0] is None else work


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
        # One row whatever is found: the revocation and the user, in one round trip.
        async with (
            self._database.connection() as connection,
            connection.cursor() as cursor,
        ):
            await cursor.execute(
                f"""SELECT EXISTS (SELECT FROM revoked_tokens WHERE token_key = %(key)s),
                           {USER_COLUMNS}
                    FROM (SELECT) AS one
                    LEFT JOIN users ON id = %(id)s""",
                {"id": user_id, "key": token_key},
            )
            revoked, *user = await _one(cursor)
        return TokenSubject(user=None if user[0] is None else user_of(user), token_revoked=revoked)


class PostgresLoginAttemptStore:
    def __init__(self, database: PostgresDatabase) -> None:
        self._database = database

    async def failed_logins(self, account_key: str) -> FailedLogins | None:
        async with self._database.connection() as connection:
            cursor = await connection.execute(
                """SELECT failures, window_started_at FROM login_failures
                   WHERE account_key = %(key)s""",
                {"key": account_key},
            )
            row = await cursor.fetchone()
            return None if row is None else FailedLogins(row[0], _utc(row[1]))

    async def record_failed_login(
        self, account_key: str, now: datetime, window: timedelta
    ) -> FailedLogins:
        async with self._database.connection() as connection:
            cursor = await connection.execute(
                """INSERT INTO login_failures AS f (account_key, failures, window_started_at)
                   VALUES (%(key)s, 1, %(now)s)
                   ON CONFLICT (account_key) DO UPDATE SET
                       failures = CASE WHEN f.window_started_at <= %(expired_before)s
                                       THEN 1 ELSE f.failures + 1 END,
                       window_started_at = CASE WHEN f.window_started_at <= %(expired_before)s
                                                THEN %(now)s ELSE f.window_started_at END
                   RETURNING failures, window_started_at""",
                # The cutoff is computed here: interval arithmetic in SQL would count days in
                # the session's time zone, 23 or 25 hours across a daylight-saving change.
                {"key": account_key, "now": now, "expired_before": now - window},
            )
            row = await cursor.fetchone()
            assert row is not None
            return FailedLogins(row[0], _utc(row[1]))

    async def release_failed_login(self, account_key: str) -> None:
        # Two statements, so that the DELETE sees what a concurrent release just committed
        # (one statement would judge the row by its snapshot from before that release).
        async with self._database.connection() as connection:
            decremented = await connection.execute(
                """UPDATE login_failures SET failures = failures - 1
                   WHERE account_key = %(key)s AND failures > 1
                   RETURNING failures""",
                {"key": account_key},
            )
            if await decremented.fetchone() is None:
                await connection.execute(
                    "DELETE FROM login_failures WHERE account_key = %(key)s AND failures = 1",
                    {"key": account_key},
                )

    async def clear_failed_logins(self, account_key: str) -> None:
        async with self._database.connection() as connection:
            await connection.execute(
                "DELETE FROM login_failures WHERE account_key = %(key)s", {"key": account_key}
            )

    async def count_attempt(self, client: str, window_started_at: datetime) -> int:
        async with self._database.connection() as connection:
            cursor = await connection.execute(
                """INSERT INTO auth_attempts AS a (client, window_started_at, attempts)
                   VALUES (%(client)s, %(window)s, 1)
                   ON CONFLICT (client, window_started_at)
                   DO UPDATE SET attempts = a.attempts + 1
                   RETURNING attempts""",
                {"client": client, "window": window_started_at},
            )
            row = await cursor.fetchone()
            assert row is not None
            count: int = row[0]
            return count

    async def purge_expired(
        self, *, failures_started_before: datetime, attempts_started_before: datetime
    ) -> int:
        async with self._database.connection() as connection:
            failures = await connection.execute(
                "DELETE FROM login_failures WHERE window_started_at < %(before)s",
                {"before": failures_started_before},
            )
            attempts = await connection.execute(
                "DELETE FROM auth_attempts WHERE window_started_at < %(before)s",
                {"before": attempts_started_before},
            )
            return failures.rowcount + attempts.rowcount


class PostgresIdempotencyStore:
    def __init__(self, database: PostgresDatabase) -> None:
        self._database = database

    async def claim(
        self, owner_id: UUID, key: str, fingerprint: str, now: datetime, ttl: timedelta
    ) -> EarlierCreation | None:
        params = {
            "owner_id": owner_id,
            "key": key,
            "fingerprint": fingerprint,
            "now": now,
            "expired_before": now - ttl,
        }
        async with self._database.connection() as connection:
            # A concurrent claim of the same key waits here until the first one's transaction
            # ends, then finds its row. An expired key is claimed afresh, as if forgotten
            # (the background purge forgets them in bulk).
            inserted = await connection.execute(
                """INSERT INTO idempotency_keys AS k (user_id, key, fingerprint, created_at)
                   VALUES (%(owner_id)s, %(key)s, %(fingerprint)s, %(now)s)
                   ON CONFLICT (user_id, key) DO UPDATE
                   SET fingerprint = EXCLUDED.fingerprint, task = NULL,
                       created_at = EXCLUDED.created_at
                   WHERE k.created_at < %(expired_before)s
                   RETURNING 1""",
                params,
            )
            if await inserted.fetchone() is not None:
                return None
            earlier = await connection.execute(
                """SELECT fingerprint, task FROM idempotency_keys
                   WHERE user_id = %(owner_id)s AND key = %(key)s""",
                params,
            )
            row = await earlier.fetchone()
        if row is None:  # the first request rolled back meanwhile: the key is free again
            return await self.claim(owner_id, key, fingerprint, now, ttl)
        stored_fingerprint, snapshot = row
        task = None if snapshot is None else _task_from_snapshot(owner_id, snapshot)
        return EarlierCreation(stored_fingerprint, task)

    async def record(self, owner_id: UUID, key: str, task: Task) -> None:
        snapshot = {
            "id": str(task.id),
            "title": task.title,
            "description": task.description,
            "completed": task.completed,
            "created_at": task.created_at.isoformat(),
            "updated_at": task.updated_at.isoformat(),
        }
        async with self._database.connection() as connection:
            await connection.execute(
                """UPDATE idempotency_keys SET task = %(task)s
                   WHERE user_id = %(owner_id)s AND key = %(key)s""",
                {"owner_id": owner_id, "key": key, "task": Jsonb(snapshot)},
            )

    async def purge_expired(self, claimed_before: datetime) -> int:
        async with self._database.connection() as connection:
            cursor = await connection.execute(
                "DELETE FROM idempotency_keys WHERE created_at < %(before)s",
                {"before": claimed_before},
            )
            return cursor.rowcount


def _task_from_snapshot(owner_id: UUID, snapshot: dict[str, Any]) -> Task:
    return Task(
        id=UUID(snapshot["id"]),
        owner_id=owner_id,
        title=snapshot["title"],
        description=snapshot["description"],
        completed=snapshot["completed"],
        created_at=datetime.fromisoformat(snapshot["created_at"]),
        updated_at=datetime.fromisoformat(snapshot["updated_at"]),
    )


def _version_check(expected_versions: Collection[datetime] | None) -> str:
    return "" if expected_versions is None else " AND updated_at = ANY(%(versions)s)"


async def _one(cursor: psycopg.AsyncCursor[_T]) -> _T:
    row = await cursor.fetchone()
    assert row is not None
    return row
