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


MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100
MAX_OFFSET = 2**53 - 1  # the largest integer every JSON client reads exactly


@dataclass(frozen=True, slots=True)
class TaskQuery:
    """Which of the owner's tasks a list shows, and which page of them: built by every
    entrypoint, handed whole to the repository, which makes one statement of it."""

    completed: bool | None = None
    limit: int = DEFAULT_PAGE_SIZE
    offset: int = 0
    after: TaskPosition | None = None
    """Keyset paging: the page starts after this task (a previous page's next_position), and
    skips `offset` more from there."""

    def __post_init__(self) -> None:
        problems = []
        if not 1 <= self.limit <= MAX_PAGE_SIZE:
            problems.append(FieldError("limit", f"Must be between 1 and {MAX_PAGE_SIZE}"))
        if not 0 <= self.offset <= MAX_OFFSET:
            problems.append(FieldError("offset", f"Must be between 0 and {MAX_OFFSET}"))
        if problems:
            raise ValidationFailed(problems)


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


def apply_changes(task: Task, changes: TaskChanges) -> Task:
    """The task after a validated partial update. Its updated_at is the store's to move: a
    stored change always moves it strictly forward (next_version)."""
    return replace(
        task,
        title=task.title if changes.title is UNCHANGED else changes.title,
        description=task.description if changes.description is UNCHANGED else changes.description,
        completed=task.completed if changes.completed is UNCHANGED else changes.completed,
    )


def next_version(stored: datetime, now: datetime) -> datetime:
    """The updated_at of a stored change: now, yet strictly after the one before, even for two
    changes within one clock tick or a clock stepping back (as the database's trigger does)."""
    return max(now, stored + _TICK)
