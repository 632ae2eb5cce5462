"""The task repository in raw SQL: every statement bound to its caller's user id, and the
caller checked in the same round trip as the work (adapters/postgres/admission.py)."""

from collections.abc import Collection
from datetime import datetime
from functools import cache
from typing import Any
from uuid import UUID

from psycopg import sql

from adapters.postgres.admission import (
    ADMISSION,
    ADMITTED,
    VERDICT,
    behind_the_caller,
    ensure_verdict_admits,
    with_caller,
)
from adapters.postgres.pool import PostgresDatabase
from adapters.postgres.rows import TASK_FIELDS, beside, build_task, columns
from application.ports import Caller, TaskPage
from domain.errors import TaskAccessDenied
from domain.tasks import Task, TaskQuery

_COLUMNS = columns(TASK_FIELDS)
_OWNED = sql.SQL("id = %(id)s AND user_id = %(caller_id)s")

# Totals come from task_counts, which triggers keep in step with tasks (migrations 0004, 0006).
COUNT_OF = {
    None: sql.SQL("SELECT total FROM task_counts WHERE user_id = %(caller_id)s"),
    True: sql.SQL("SELECT completed FROM task_counts WHERE user_id = %(caller_id)s"),
    False: sql.SQL("SELECT total - completed FROM task_counts WHERE user_id = %(caller_id)s"),
}

_ADD = behind_the_caller(
    sql.SQL("""INSERT INTO tasks ({columns})
               SELECT %(id)s, %(caller_id)s, %(title)s, %(description)s, %(completed)s,
                      %(created_at)s, %(updated_at)s
               WHERE {admitted}
               RETURNING {columns}""").format(columns=_COLUMNS, admitted=ADMITTED)
)


@cache
def _get(*, for_update: bool) -> bytes:
    # Whether another user's task has the id rides along, gated like the work: a task that is
    # not the caller's is only ever seen as there, and only by an admitted caller.
    return behind_the_caller(
        sql.SQL("SELECT {columns} FROM tasks WHERE {owned} AND {admitted}{lock}").format(
            columns=_COLUMNS,
            owned=_OWNED,
            admitted=ADMITTED,
            lock=sql.SQL(" FOR UPDATE" if for_update else ""),
        ),
        beside=sql.SQL(
            """(NOT EXISTS (SELECT FROM work) AND {admitted}
                AND EXISTS (SELECT FROM tasks WHERE id = %(id)s)) AS elsewhere"""
        ).format(admitted=ADMITTED),
    )


def _version_check(expected_versions: Collection[datetime] | None) -> sql.Composable:
    return sql.SQL("" if expected_versions is None else " AND updated_at = ANY(%(versions)s)")


@cache
def _update(*, checks_version: bool) -> bytes:
    # updated_at is not sent: the trigger moves it forward, strictly, on every update.
    # The version check sits in the WHERE clause: a concurrent writer holds the row lock,
    # and the check is made again on the row it leaves behind.
    return behind_the_caller(
        sql.SQL("""UPDATE tasks
                   SET title = %(title)s, description = %(description)s,
                       completed = %(completed)s
                   WHERE {owned}{version} AND {admitted}
                   RETURNING {columns}""").format(
            owned=_OWNED,
            version=_version_check([] if checks_version else None),
            admitted=ADMITTED,
            columns=_COLUMNS,
        )
    )


@cache
def _delete(*, checks_version: bool) -> bytes:
    return behind_the_caller(
        sql.SQL("DELETE FROM tasks WHERE {owned}{version} AND {admitted} RETURNING id").format(
            owned=_OWNED, version=_version_check([] if checks_version else None), admitted=ADMITTED
        )
    )


@cache
def _list(*, completed: bool | None, after: bool) -> bytes:
    # Each filter is spelled out rather than "%(completed)s IS NULL OR ...", which would hide
    # it from the planner: the page reads the (user_id, [completed,] created_at, id) index
    # from the right place and stops after limit + 1 rows.
    where = [sql.SQL("user_id = %(caller_id)s")]
    if completed is not None:
        where.append(sql.SQL("completed = %(completed)s"))
    if after:
        where.append(sql.SQL("(created_at, id) < (%(after_created_at)s, %(after_id)s)"))
    where.append(ADMITTED)
    order = sql.SQL("created_at DESC, id DESC")
    # The total rides along with the verdict, so an empty page needs no second query; the
    # join promises no order of its own, so the page's is said again.
    return (
        behind_the_caller(
            sql.SQL(
                "SELECT {columns} FROM tasks WHERE {where} ORDER BY {order} "
                "LIMIT %(limit)s OFFSET %(offset)s"
            ).format(columns=_COLUMNS, where=sql.SQL(" AND ").join(where), order=order),
            beside=sql.SQL("({}) AS total").format(COUNT_OF[completed]),
        )
        + b" ORDER BY work.created_at DESC, work.id DESC"
    )


_ROW = beside(VERDICT, build_task)
_GOT = beside((*VERDICT, "elsewhere"), build_task)
_PAGE = beside((*VERDICT, "total"), build_task)


class PostgresTaskRepository:
    def __init__(self, database: PostgresDatabase) -> None:
        self._database = database

    def for_caller(self, caller: Caller) -> "PostgresCallerTasks":
        return PostgresCallerTasks(self._database, caller)


class PostgresCallerTasks:
    """One caller's tasks: every statement carries the caller's id and the caller's check."""

    __slots__ = ("_caller", "_database", "_params")

    def __init__(self, database: PostgresDatabase, caller: Caller) -> None:
        self._database = database
        self._caller = caller
        self._params = with_caller(caller)

    async def admit(self) -> None:
        async with self._database.connection() as connection:
            cursor = await connection.execute(ADMISSION, self._params)
            verdict = await cursor.fetchone()
        assert verdict is not None  # the caller CTE has exactly one row
        ensure_verdict_admits(verdict)

    async def add(self, task: Task) -> Task:
        if task.owner_id != self._caller.user_id:
            await self.admit()  # a refused caller is told that first, as by every statement
            raise TaskAccessDenied()
        added = await self._one(
            _ADD,
            {
                "id": task.id,
                "title": task.title,
                "description": task.description,
                "completed": task.completed,
                "created_at": task.created_at,
                "updated_at": task.updated_at,
            },
        )
        assert added is not None
        return added

    async def get(self, task_id: UUID, *, for_update: bool = False) -> Task | None:
        async with (
            self._database.connection() as connection,
            connection.cursor(row_factory=_GOT) as cursor,
        ):
            await cursor.execute(_get(for_update=for_update), self._params | {"id": task_id})
            found = await cursor.fetchone()
        assert found is not None
        (*verdict, elsewhere), task = found
        ensure_verdict_admits(verdict)
        if elsewhere:
            raise TaskAccessDenied()
        return task

    async def list(self, query: TaskQuery) -> TaskPage:
        after = query.after
        params = self._params | {
            "completed": query.completed,
            "after_created_at": after and after.created_at,
            "after_id": after and after.id,
            "limit": query.limit + 1,  # one more tells whether a next page exists
            "offset": query.offset,
        }
        statement = _list(completed=query.completed, after=after is not None)
        async with (
            self._database.connection() as connection,
            # Binary rows: uuids and timestamps load from bytes, not parsed from text.
            connection.cursor(binary=True, row_factory=_PAGE) as cursor,
        ):
            await cursor.execute(statement, params)
            rows = await cursor.fetchall()
        (*verdict, total), _ = rows[0]
        ensure_verdict_admits(verdict)
        # A first row without a task is the verdict alone: an empty page.
        tasks = [task for _, task in rows if task is not None]
        return TaskPage(
            tasks=tasks[: query.limit],
            total=total or 0,  # no row yet: the caller never had a task
            has_more=len(tasks) > query.limit,
        )

    async def update(
        self, task: Task, *, expected_versions: Collection[datetime] | None = None
    ) -> Task | None:
        return await self._one(
            _update(checks_version=expected_versions is not None),
            {
                "id": task.id,
                "title": task.title,
                "description": task.description,
                "completed": task.completed,
                "versions": list(expected_versions or ()),
            },
        )

    async def delete(
        self, task_id: UUID, *, expected_versions: Collection[datetime] | None = None
    ) -> bool:
        async with self._database.connection() as connection:
            cursor = await connection.execute(
                _delete(checks_version=expected_versions is not None),
                self._params | {"id": task_id, "versions": list(expected_versions or ())},
            )
            row = await cursor.fetchone()
        assert row is not None
        ensure_verdict_admits(row)
        return row[len(VERDICT)] is not None

    async def _one(self, statement: bytes, params: dict[str, Any]) -> Task | None:
        """The task the statement returns, if any, once the caller's verdict admits."""
        async with (
            self._database.connection() as connection,
            connection.cursor(row_factory=_ROW) as cursor,
        ):
            await cursor.execute(statement, self._params | params)
            found = await cursor.fetchone()
        assert found is not None
        verdict, task = found
        ensure_verdict_admits(verdict)
        return task
