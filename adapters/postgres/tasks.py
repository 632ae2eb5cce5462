"""The task repository in raw SQL: every statement bound to its caller's user id, and the
caller checked in the same round trip as the work (adapters/postgres/admission.py)."""

from collections.abc import Collection, Sequence
from datetime import datetime
from functools import cache
from typing import Any
from uuid import UUID

import psycopg
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
from adapters.postgres.rows import TASK_FIELDS, TASK_TAGS, beside, build_task, columns
from application.ports import Caller, TagUsage, TaskPage
from domain.errors import TagAlreadyExists, TagNotFound, TaskAccessDenied
from domain.queries import TaskQuery, TaskSort, title_key
from domain.tags import tag_key
from domain.tasks import Task

_COLUMNS = columns(TASK_FIELDS)
_RETURNED = sql.SQL("{}, {}").format(_COLUMNS, TASK_TAGS)
_OWNED = sql.SQL("id = %(id)s AND user_id = %(caller_id)s")
# What q's words are looked for in: the expression of the trigram index (migration 0010).
_SEARCHED = sql.SQL("(title || E'\\n' || coalesce(description, ''))")

# Totals come from task_counts, which triggers keep in step with tasks (migrations 0004, 0006).
COUNT_OF = {
    None: sql.SQL("SELECT total FROM task_counts WHERE user_id = %(caller_id)s"),
    True: sql.SQL("SELECT completed FROM task_counts WHERE user_id = %(caller_id)s"),
    False: sql.SQL("SELECT total - completed FROM task_counts WHERE user_id = %(caller_id)s"),
}

# The task's tags join the caller's vocabulary, each keeping the spelling the caller used
# first. DO UPDATE rather than DO NOTHING: it returns the row a concurrent writer just made,
# which this statement's snapshot cannot see, and locks it against a rename meanwhile.
_SPELLED = sql.SQL("""spelled AS (
    INSERT INTO tags AS t (user_id, key, name)
    SELECT %(caller_id)s, key, name
    FROM unnest(%(tag_keys)s::text[], %(tag_names)s::text[]) AS written (key, name)
    WHERE {admitted}
    ON CONFLICT (user_id, key) DO UPDATE SET name = t.name
    RETURNING name
)""").format(admitted=ADMITTED)
_WRITTEN_TAGS = sql.SQL("ARRAY(SELECT name FROM spelled) AS tags")

_ADD = behind_the_caller(
    sql.SQL("SELECT inserted.*, {tags} FROM inserted").format(tags=_WRITTEN_TAGS),
    writes=sql.SQL("""{spelled}, inserted AS (
               INSERT INTO tasks ({columns}, due_moment, tag_keys, title_key)
               SELECT %(id)s, %(caller_id)s, %(title)s, %(description)s, %(completed)s,
                      %(created_at)s, %(updated_at)s, %(priority)s, %(due_date)s,
                      %(due_time)s, %(due_timezone)s, %(completed_at)s, %(due_moment)s,
                      %(tag_keys)s, %(title_key)s
               WHERE {admitted}
               RETURNING {columns})""").format(
        spelled=_SPELLED, columns=_COLUMNS, admitted=ADMITTED
    ),
)


@cache
def _get(*, for_update: bool) -> bytes:
    # Whether another user's task has the id rides along, gated like the work: a task that is
    # not the caller's is only ever seen as there, and only by an admitted caller.
    return behind_the_caller(
        sql.SQL("SELECT {returned} FROM tasks WHERE {owned} AND {admitted}{lock}").format(
            returned=_RETURNED,
            owned=_OWNED,
            admitted=ADMITTED,
            lock=sql.SQL(" FOR UPDATE OF tasks" if for_update else ""),
        ),
        beside=sql.SQL(
            """(NOT EXISTS (SELECT FROM work) AND {admitted}
                AND EXISTS (SELECT FROM tasks WHERE id = %(id)s)) AS elsewhere"""
        ).format(admitted=ADMITTED),
    )


def _version_check(checks_version: bool) -> sql.Composable:
    return sql.SQL(" AND updated_at = ANY(%(versions)s)" if checks_version else "")


@cache
def _update(*, checks_version: bool) -> bytes:
    # updated_at is not sent: the trigger moves it forward, strictly, on every update.
    # The version check sits in the WHERE clause: a concurrent writer holds the row lock,
    # and the check is made again on the row it leaves behind.
    return behind_the_caller(
        sql.SQL("SELECT updated.*, {tags} FROM updated").format(tags=_WRITTEN_TAGS),
        writes=sql.SQL("""{spelled}, updated AS (
                   UPDATE tasks
                   SET title = %(title)s, description = %(description)s,
                       completed = %(completed)s, priority = %(priority)s,
                       due_date = %(due_date)s, due_time = %(due_time)s,
                       due_timezone = %(due_timezone)s, due_moment = %(due_moment)s,
                       completed_at = %(completed_at)s, tag_keys = %(tag_keys)s,
                       title_key = %(title_key)s
                   WHERE {owned}{version} AND {admitted}
                   RETURNING {columns})""").format(
            spelled=_SPELLED,
            owned=_OWNED,
            version=_version_check(checks_version),
            admitted=ADMITTED,
            columns=_COLUMNS,
        ),
    )


@cache
def _delete(*, checks_version: bool) -> bytes:
    return behind_the_caller(
        sql.SQL("DELETE FROM tasks WHERE {owned}{version} AND {admitted} RETURNING id").format(
            owned=_OWNED, version=_version_check(checks_version), admitted=ADMITTED
        )
    )


_TIMEZONE = behind_the_caller(
    sql.SQL("SELECT timezone FROM users WHERE id = %(caller_id)s AND {}").format(ADMITTED)
)

# The column a sort orders by; ties are always newest first.
_SORTED_BY = {
    "created_at": "created_at",
    "updated_at": "updated_at",
    "due": "due_moment",
    "priority": "priority",
    "title": "title_key",
}
_AFTER_TIES = sql.SQL("(created_at, id) < (%(after_created_at)s, %(after_id)s)")


def _order(sort: TaskSort, table: str | None = None) -> sql.Composable:
    """The ORDER BY of the sort (of `table`'s columns when given)."""

    def column(name: str) -> sql.Composable:
        return sql.Identifier(name) if table is None else sql.Identifier(table, name)

    direction = sql.SQL("DESC" if sort.descending else "ASC")
    if sort.key == "created_at":
        return sql.SQL("{} {}, {} DESC").format(column("created_at"), direction, column("id"))
    # NULLS LAST only where a key can be NULL (a task without a due): spelled on a NOT NULL
    # column it would not match the index's own order (DESC is NULLS FIRST) and cost a sort.
    nulls = sql.SQL(" NULLS LAST" if sort.key == "due" else "")
    return sql.SQL("{} {}{}, {} DESC, {} DESC").format(
        column(_SORTED_BY[sort.key]), direction, nulls, column("created_at"), column("id")
    )


def _after(sort: TaskSort, *, key_missing: bool) -> sql.Composable:
    """The keyset condition: the tasks the sort puts after the cursor's position."""
    if sort is TaskSort.NEWEST:
        return _AFTER_TIES
    if sort is TaskSort.OLDEST:
        return sql.SQL(
            "(created_at > %(after_created_at)s OR "
            "(created_at = %(after_created_at)s AND id < %(after_id)s))"
        )
    key = sql.Identifier(_SORTED_BY[sort.key])
    if key_missing:  # after a task without a due: only such tasks follow it
        return sql.SQL("({key} IS NULL AND {ties})").format(key=key, ties=_AFTER_TIES)
    beyond = sql.SQL("<" if sort.descending else ">")
    return sql.SQL(
        "({key} {beyond} %(after_key)s OR ({key} = %(after_key)s AND {ties}) OR {key} IS NULL)"
    ).format(key=key, beyond=beyond, ties=_AFTER_TIES)


# Overdue: open, and a timed due before now or an all-day due whose ending midnight has come.
_OVERDUE = sql.SQL(
    "(NOT completed AND (due_moment < %(now)s OR (due_moment = %(now)s AND due_time IS NULL)))"
)


@cache
def _filters(
    *,
    completed: bool | None,
    priorities: bool,
    tags: bool,
    words: int,
    due_after: bool,
    due_before: bool,
    has_due: bool | None,
    overdue: bool | None,
) -> sql.Composable:
    """The WHERE of a list with these filters (values as parameters)."""
    where: list[sql.Composable] = [sql.SQL("user_id = %(caller_id)s")]
    if completed is not None:
        where.append(sql.SQL("completed = %(completed)s"))
    if priorities:
        where.append(sql.SQL("priority = ANY(%(priorities)s)"))
    if tags:
        where.append(sql.SQL("tag_keys @> %(tags)s::text[]"))
    # One predicate per word: the trigram index serves each ILIKE, not an ILIKE ALL(array).
    where += [
        sql.SQL("{} ILIKE {}").format(_SEARCHED, sql.Placeholder(f"word_{n}")) for n in range(words)
    ]
    if due_after:
        where.append(sql.SQL("due_date >= %(due_after)s"))
    if due_before:
        where.append(sql.SQL("due_date <= %(due_before)s"))
    if has_due is not None:
        where.append(sql.SQL("due_date IS NOT NULL" if has_due else "due_date IS NULL"))
    if overdue is not None:
        where.append(_OVERDUE if overdue else sql.SQL("NOT coalesce({}, false)").format(_OVERDUE))
    return sql.SQL(" AND ").join(where)


@cache
def _list(
    shape: tuple[Any, ...], sort: TaskSort, *, filtered: bool, after: bool, key_missing: bool
) -> bytes:
    """The statement of a list of this shape; `filtered` (TaskQuery.filtered): whether more
    than `completed` narrows it, so that task_counts cannot give its total."""
    # Each filter is spelled out rather than "%(completed)s IS NULL OR ...", which would hide
    # it from the planner: the page reads the right index from the right place and stops
    # after limit + 1 rows.
    filters_of = dict(
        zip(
            (
                "completed",
                "priorities",
                "tags",
                "words",
                "due_after",
                "due_before",
                "has_due",
                "overdue",
            ),
            shape,
            strict=True,
        )
    )
    where = _filters(**filters_of)
    page_where = where
    if after:
        page_where = sql.SQL("{} AND {}").format(where, _after(sort, key_missing=key_missing))
    total = (
        COUNT_OF[filters_of["completed"]]
        if not filtered
        else sql.SQL("SELECT count(*) FROM tasks WHERE {}").format(where)
    )
    # The total rides along with the verdict, so an empty page needs no second query; the
    # join promises no order of its own, so the page's is said again.
    return (
        behind_the_caller(
            sql.SQL(
                "SELECT {returned}, due_moment, title_key FROM tasks WHERE {where} AND {admitted} "
                "ORDER BY {order} LIMIT %(limit)s OFFSET %(offset)s"
            ).format(
                returned=_RETURNED,
                where=page_where,
                admitted=ADMITTED,
                order=_order(sort),
            ),
            beside=sql.SQL("({}) AS total").format(total),
        )
        + b" ORDER BY "
        + _order(sort, "work").as_bytes(None)
    )


def _like_pattern(word: str) -> str:
    """The word as an ILIKE pattern matching it anywhere: its `%`, `_` and `\\` are ordinary."""
    escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


_TAGS = behind_the_caller(
    sql.SQL("""SELECT tags.name,
                      count(tasks.id) FILTER (WHERE NOT tasks.completed) AS open,
                      count(tasks.id) AS total
               FROM tags
               LEFT JOIN tasks ON tasks.user_id = tags.user_id
                              AND tasks.tag_keys @> ARRAY[tags.key]
               WHERE tags.user_id = %(caller_id)s AND {}
               GROUP BY tags.key, tags.name""").format(ADMITTED)
)
# A rename moves every task carrying the tag (and with it their updated_at), in the same
# statement as the vocabulary; the key's uniqueness refuses a name another tag has.
_RENAME_TAG = behind_the_caller(
    sql.SQL("""SELECT name,
                      (SELECT count(*) FILTER (WHERE NOT completed) FROM retagged) AS open,
                      (SELECT count(*) FROM retagged) AS total
               FROM renamed"""),
    writes=sql.SQL("""renamed AS (
                   UPDATE tags SET key = %(new_key)s, name = %(new_name)s
                   WHERE user_id = %(caller_id)s AND key = %(key)s AND {admitted}
                   RETURNING name
               ), retagged AS (
                   UPDATE tasks SET tag_keys = array_replace(tag_keys, %(key)s, %(new_key)s)
                   WHERE user_id = %(caller_id)s AND tag_keys @> ARRAY[%(key)s]::text[]
                     AND EXISTS (SELECT FROM renamed)
                   RETURNING completed
               )""").format(admitted=ADMITTED),
)
_DELETE_TAG = behind_the_caller(
    sql.SQL("SELECT key FROM removed"),
    writes=sql.SQL("""removed AS (
                   DELETE FROM tags
                   WHERE user_id = %(caller_id)s AND key = %(key)s AND {admitted}
                   RETURNING key
               ), untagged AS (
                   UPDATE tasks SET tag_keys = array_remove(tag_keys, %(key)s)
                   WHERE user_id = %(caller_id)s AND tag_keys @> ARRAY[%(key)s]::text[]
                     AND EXISTS (SELECT FROM removed)
               )""").format(admitted=ADMITTED),
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

    async def timezone(self) -> str:
        (zone,) = await self._rows(_TIMEZONE, {})
        return str(zone[0])

    async def add(self, task: Task) -> Task:
        if task.owner_id != self._caller.user_id:
            await self.admit()  # a refused caller is told that first, as by every statement
            raise TaskAccessDenied()
        added = await self._one(
            _ADD,
            _written(task)
            | {"id": task.id, "created_at": task.created_at, "updated_at": task.updated_at},
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

    async def list(self, query: TaskQuery, now: datetime) -> TaskPage:
        after = query.after
        params = self._params | {
            "completed": query.completed,
            "priorities": [p.rank for p in query.priorities],
            "tags": list(query.tags),
            "due_after": query.due_after,
            "due_before": query.due_before,
            "now": now,
            "after_created_at": after and after.created_at,
            "after_id": after and after.id,
            "after_key": after and after.key,
            "limit": query.limit + 1,  # one more tells whether a next page exists
            "offset": query.offset,
        }
        params |= {f"word_{n}": _like_pattern(word) for n, word in enumerate(query.words)}
        shape = (
            query.completed,
            bool(query.priorities),
            bool(query.tags),
            len(query.words),
            query.due_after is not None,
            query.due_before is not None,
            query.has_due,
            query.overdue,
        )
        statement = _list(
            shape,
            query.sort,
            filtered=query.filtered,
            after=after is not None,
            key_missing=after is not None and after.key is None,
        )
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
            _written(task) | {"id": task.id, "versions": list(expected_versions or ())},
        )

    async def delete(
        self, task_id: UUID, *, expected_versions: Collection[datetime] | None = None
    ) -> bool:
        (row,) = await self._rows(
            _delete(checks_version=expected_versions is not None),
            {"id": task_id, "versions": list(expected_versions or ())},
        )
        return row[0] is not None

    async def tags(self) -> Sequence[TagUsage]:
        rows = await self._rows(_TAGS, {})
        usages = [TagUsage(name, open_, total) for name, open_, total in rows if name]
        return sorted(usages, key=lambda usage: (tag_key(usage.name), usage.name))

    async def rename_tag(self, name: str, new_name: str) -> TagUsage:
        params = {"key": tag_key(name), "new_key": tag_key(new_name), "new_name": new_name}
        try:
            (row,) = await self._rows(_RENAME_TAG, params)
        except psycopg.errors.UniqueViolation:
            raise TagAlreadyExists() from None
        if row[0] is None:
            raise TagNotFound()
        return TagUsage(*row)

    async def delete_tag(self, name: str) -> None:
        (row,) = await self._rows(_DELETE_TAG, {"key": tag_key(name)})
        if row[0] is None:
            raise TagNotFound()

    async def _rows(self, statement: bytes, params: dict[str, Any]) -> Sequence[tuple[Any, ...]]:
        """The work's rows (one of Nones when it has none), once the caller's verdict admits."""
        async with self._database.connection() as connection:
            cursor = await connection.execute(statement, self._params | params)
            rows = await cursor.fetchall()
        ensure_verdict_admits(rows[0])
        return [row[len(VERDICT) :] for row in rows]

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


def _written(task: Task) -> dict[str, Any]:
    """The parameters of the task's stored fields that a write sends."""
    due = task.due
    return {
        "title": task.title,
        "description": task.description,
        "completed": task.completed,
        "priority": task.priority.rank,
        "due_date": due and due.date,
        "due_time": due and due.time,
        "due_timezone": due and due.timezone,
        "due_moment": due and due.moment,
        "completed_at": task.completed_at,
        "tag_keys": [tag_key(name) for name in task.tags],
        "tag_names": list(task.tags),
        "title_key": title_key(task.title),
    }
