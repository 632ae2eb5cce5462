"""The tables' rows and the domain's objects, mapped by column name: the one place that knows
which column holds what."""

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import psycopg
from psycopg import sql
from psycopg.rows import RowMaker

from domain.due import Due
from domain.tags import sorted_tags
from domain.tasks import Priority, Task
from domain.users import User

_T = TypeVar("_T")

USER_FIELDS = (
    "id",
    "email",
    "password_hash",
    "created_at",
    "updated_at",
    "tokens_valid_after",
    "token_generation",
    "timezone",
)
TASK_FIELDS = (
    "id",
    "user_id",
    "title",
    "description",
    "completed",
    "created_at",
    "updated_at",
    "priority",
    "due_date",
    "due_time",
    "due_timezone",
    "completed_at",
)
TASK_TAGS = sql.SQL(
    "ARRAY(SELECT name FROM tags WHERE tags.user_id = tasks.user_id "
    "AND tags.key = ANY(tasks.tag_keys)) AS tags"
)
"""The spelling of the task's tags, beside TASK_FIELDS wherever a task is read."""
PRIORITIES = tuple(Priority)
"""By their rank, as the priority column keeps them."""


def columns(fields: Sequence[str], table: str | None = None) -> sql.Composed:
    """The fields as a select list, of the table when given (`users.id, users.email, ...`)."""
    if table is None:
        return sql.SQL(", ").join(map(sql.Identifier, fields))
    return sql.SQL(", ").join(sql.Identifier(table, field) for field in fields)


def utc(moment: datetime) -> datetime:
    # psycopg returns timestamptz in the session's time zone, which a managed server may set.
    return moment if moment.tzinfo is UTC else moment.astimezone(UTC)


def build_user(values: Sequence[Any], at: dict[str, int]) -> User:
    valid_after = values[at["tokens_valid_after"]]
    return User(
        id=values[at["id"]],
        email=values[at["email"]],
        password_hash=values[at["password_hash"]],
        created_at=utc(values[at["created_at"]]),
        updated_at=utc(values[at["updated_at"]]),
        tokens_valid_after=None if valid_after is None else utc(valid_after),
        token_generation=values[at["token_generation"]],
        timezone=values[at["timezone"]],
    )


def build_task(values: Sequence[Any], at: dict[str, int]) -> Task:
    due_date, due_timezone = values[at["due_date"]], values[at["due_timezone"]]
    completed_at = values[at["completed_at"]]
    return Task(
        id=values[at["id"]],
        owner_id=values[at["user_id"]],
        title=values[at["title"]],
        description=values[at["description"]],
        completed=values[at["completed"]],
        created_at=utc(values[at["created_at"]]),
        updated_at=utc(values[at["updated_at"]]),
        priority=PRIORITIES[values[at["priority"]]],
        due=None if due_date is None else Due(due_date, values[at["due_time"]], due_timezone),
        tags=sorted_tags(values[at["tags"]]),
        completed_at=None if completed_at is None else utc(completed_at),
    )


Build = Callable[[Sequence[Any], dict[str, int]], _T]
RowFactory = Callable[["psycopg.AsyncCursor[Any]"], RowMaker[_T]]


def positions(cursor: "psycopg.AsyncCursor[Any]") -> dict[str, int]:
    """Where each column of the result is, by name (found once per result, not per row)."""
    return {column.name: index for index, column in enumerate(cursor.description or ())}


def object_row(build: Build[_T]) -> RowFactory[_T | None]:
    """Rows as objects, their fields found by name; a row whose id is NULL (a LEFT JOIN that
    found nothing) is None."""

    def row_factory(cursor: "psycopg.AsyncCursor[Any]") -> RowMaker[_T | None]:
        at = positions(cursor)
        first = at["id"]
        return lambda values: None if values[first] is None else build(values, at)

    return row_factory


def beside(
    extras: Sequence[str], build: Build[_T]
) -> RowFactory[tuple[tuple[Any, ...], _T | None]]:
    """Rows as the values of the extra columns, with the object built from the rest."""

    def row_factory(
        cursor: "psycopg.AsyncCursor[Any]",
    ) -> RowMaker[tuple[tuple[Any, ...], _T | None]]:
        at = positions(cursor)
        wanted, first = [at[name] for name in extras], at["id"]

        def make(values: Sequence[Any]) -> tuple[tuple[Any, ...], _T | None]:
            found = None if values[first] is None else build(values, at)
            return tuple(values[index] for index in wanted), found

        return make

    return row_factory


user_row = object_row(build_user)
task_row = object_row(build_task)
