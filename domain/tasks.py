"""Tasks on a user's todo list, their rules, and the ownership rule."""

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import Enum
from typing import Final
from uuid import UUID

from domain.errors import FieldError, TaskAccessDenied, ValidationFailed

MAX_TITLE_LENGTH = 200
MAX_DESCRIPTION_LENGTH = 10_000
_NUL = "\x00"
# The smallest step PostgreSQL's timestamptz can represent: updated_at always moves by at least it.
_TICK = timedelta(microseconds=1)


class _Unchanged(Enum):
    UNCHANGED = "unchanged"


UNCHANGED: Final = _Unchanged.UNCHANGED
"""Marks a field that a partial update leaves as it is (distinct from None, which clears)."""


@dataclass(frozen=True, slots=True, order=True)
class TaskPosition:
    """Where a task stands in a list: lists run newest first, by created_at, then by id."""

    created_at: datetime
    id: UUID


@dataclass(frozen=True, slots=True)
class Task:
    id: UUID
    owner_id: UUID
    title: str
    description: str | None
    completed: bool
    created_at: datetime
    updated_at: datetime

    @property
    def position(self) -> TaskPosition:
        return TaskPosition(self.created_at, self.id)

    def ensure_owned_by(self, user_id: UUID) -> None:
        """The ownership rule: a task is only ever read or changed by the user who owns it."""
        if self.owner_id != user_id:
            raise TaskAccessDenied()


@dataclass(frozen=True, slots=True)
class TaskChanges:
    """A partial update: every field left UNCHANGED keeps its current value."""

    title: str | _Unchanged = UNCHANGED
    description: str | _Unchanged | None = UNCHANGED
    completed: bool | _Unchanged = UNCHANGED


def _title_problems(title: str) -> list[FieldError]:
    if _NUL in title:
        return [FieldError("title", "Must not contain the NUL character (U+0000)")]
    if not title:
        return [FieldError("title", "Title must not be blank")]
    if len(title) > MAX_TITLE_LENGTH:
        return [FieldError("title", f"Title must be at most {MAX_TITLE_LENGTH} characters")]
    return []


def _description_problems(description: str | None) -> list[FieldError]:
    if description is None:
        return []
    if _NUL in description:
        return [FieldError("description", "Must not contain the NUL character (U+0000)")]
    if len(description) > MAX_DESCRIPTION_LENGTH:
        return [
            FieldError(
                "description", f"Description must be at most {MAX_DESCRIPTION_LENGTH} characters"
            )
        ]
    return []


def normalize_title(raw: str) -> str:
    return raw.strip()


def new_task(
    *,
    task_id: UUID,
    owner_id: UUID,
    title: str,
    description: str | None,
    completed: bool,
    now: datetime,
) -> Task:
    title = normalize_title(title)
    if problems := _title_problems(title) + _description_problems(description):
        raise ValidationFailed(problems)
    return Task(
        id=task_id,
        owner_id=owner_id,
        title=title,
        description=description,
        completed=completed,
        created_at=now,
        updated_at=now,
    )


def validate_changes(changes: TaskChanges) -> TaskChanges:
    """Checks a partial update before it touches any task; returns it with the title trimmed."""
    problems: list[FieldError] = []
    if changes.title is not UNCHANGED:
        changes = replace(changes, title=normalize_title(changes.title))
        assert changes.title is not UNCHANGED
        problems += _title_problems(changes.title)
    if changes.description is not UNCHANGED:
        problems += _description_problems(changes.description)
    if problems:
        raise ValidationFailed(problems)
    return changes


def apply_changes(task: Task, changes: TaskChanges, now: datetime) -> Task:
    """The task after a validated partial update. updated_at always moves strictly forward."""
    return replace(
        task,
        title=task.title if changes.title is UNCHANGED else changes.title,
        description=task.description if changes.description is UNCHANGED else changes.description,
        completed=task.completed if changes.completed is UNCHANGED else changes.completed,
        updated_at=max(now, task.updated_at + _TICK),
    )
