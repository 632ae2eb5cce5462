"""Tasks on a user's todo list, their rules, and the ownership rule."""

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import Enum
from typing import Final
from uuid import UUID

from domain.due import Due, WrittenDue
from domain.errors import FieldError, TaskAccessDenied, ValidationFailed
from domain.tags import normalize_tags, sorted_tags

MAX_TITLE_LENGTH = 200
MAX_DESCRIPTION_LENGTH = 10_000
_NUL = "\x00"
# The smallest step PostgreSQL's timestamptz can represent: updated_at always moves by at least it.
_TICK = timedelta(microseconds=1)


class _Unchanged(Enum):
    UNCHANGED = "unchanged"


UNCHANGED: Final = _Unchanged.UNCHANGED
"""Marks a field that a partial update leaves as it is (distinct from None, which clears)."""


class Priority(Enum):
    """How important a task is; lists sort them none < low < medium < high."""

    NONE = "none"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"

    @property
    def rank(self) -> int:
        return _PRIORITY_RANKS[self]


_PRIORITY_RANKS = {priority: rank for rank, priority in enumerate(Priority)}


@dataclass(frozen=True, slots=True)
class Task:
    id: UUID
    owner_id: UUID
    title: str
    description: str | None
    completed: bool
    created_at: datetime
    updated_at: datetime
    priority: Priority = Priority.NONE
    due: Due | None = None
    tags: tuple[str, ...] = ()
    """Sorted as lists show them (domain.tags.sorted_tags)."""
    completed_at: datetime | None = None
    """When the task was last completed; None while it is open."""

    def is_overdue(self, now: datetime) -> bool:
        """Open, with a due that has passed."""
        return not self.completed and self.due is not None and self.due.has_passed(now)

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
    priority: Priority | _Unchanged = UNCHANGED
    due: Due | WrittenDue | _Unchanged | None = UNCHANGED
    """A WrittenDue is resolved to a Due (in the user's time zone) before it is applied."""
    tags: tuple[str, ...] | _Unchanged = UNCHANGED
    """As written (domain.tags.normalize_tags); the store keeps the user's spelling of each."""


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
    priority: Priority = Priority.NONE,
    due: Due | None = None,
    tags: tuple[str, ...] = (),
) -> Task:
    """A new task; one created completed was completed as it was created. Tags as written
    (domain.tags.normalize_tags)."""
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
        priority=priority,
        due=due,
        tags=sorted_tags(tags),
        completed_at=now if completed else None,
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
    if changes.tags is not UNCHANGED:
        try:
            changes = replace(changes, tags=normalize_tags(changes.tags))
        except ValidationFailed as failed:
            problems += failed.errors
    if problems:
        raise ValidationFailed(problems)
    return changes


def apply_changes(task: Task, changes: TaskChanges, now: datetime) -> Task:
    """The task after a validated partial update, at `now`. completed_at is set when the task
    goes from open to completed, kept when it is completed again, cleared when it reopens. Its
    updated_at is the store's to move: a stored change always moves it strictly forward
    (next_version)."""
    completed = task.completed if changes.completed is UNCHANGED else changes.completed
    return replace(
        task,
        title=task.title if changes.title is UNCHANGED else changes.title,
        description=task.description if changes.description is UNCHANGED else changes.description,
        completed=completed,
        priority=task.priority if changes.priority is UNCHANGED else changes.priority,
        due=task.due if changes.due is UNCHANGED else _resolved_due(changes.due),
        tags=task.tags if changes.tags is UNCHANGED else sorted_tags(changes.tags),
        completed_at=(task.completed_at or now) if completed else None,
    )


def _resolved_due(due: "Due | WrittenDue | None") -> Due | None:
    if isinstance(due, WrittenDue):
        raise TypeError("a written due is resolved in the user's time zone before it applies")
    return due


def next_version(stored: datetime, now: datetime) -> datetime:
    """The updated_at of a stored change: now, yet strictly after the one before, even for two
    changes within one clock tick or a clock stepping back (as the database's trigger does)."""
    return max(now, stored + _TICK)
