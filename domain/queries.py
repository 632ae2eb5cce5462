"""Which of a user's tasks a list shows, in which order, and which page of them: one query
object that every entrypoint builds and the repository turns into one statement. The rules
here (what matches, what comes first) are the specification the stores are held to."""

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import Enum
from functools import total_ordering
from typing import Any
from uuid import UUID

from domain.errors import FieldError, ValidationFailed
from domain.tags import tag_key, tag_name_problems
from domain.tasks import Priority, Task

MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100
MAX_OFFSET = 2**53 - 1  # the largest integer every JSON client reads exactly
MAX_SEARCH_LENGTH = 200


class TaskSort(Enum):
    """The orders of a list; a leading `-` is descending. Ties keep newest first."""

    NEWEST = "-created_at"
    OLDEST = "created_at"
    UPDATED = "updated_at"
    RECENTLY_UPDATED = "-updated_at"
    DUE = "due"
    DUE_LAST = "-due"
    PRIORITY = "priority"
    PRIORITY_FIRST = "-priority"
    TITLE = "title"
    TITLE_DESCENDING = "-title"

    @property
    def key(self) -> str:
        """What it orders by: created_at, updated_at, due, priority or title."""
        return self.value.lstrip("-")

    @property
    def descending(self) -> bool:
        return self.value.startswith("-")


def title_key(title: str) -> str:
    """How titles compare: case-insensitively (Unicode casefold), then code point by code
    point."""
    return title.casefold()


def sort_key(task: Task, sort: TaskSort) -> Any:
    """The value the sort orders the task by; None (a task without a due) sorts last in both
    directions."""
    match sort.key:
        case "created_at":
            return task.created_at
        case "updated_at":
            return task.updated_at
        case "due":
            return None if task.due is None else task.due.moment
        case "priority":
            return task.priority.rank
        case _:
            return title_key(task.title)


@dataclass(frozen=True, slots=True)
class TaskPosition:
    """Where a task stands in a list: its sort key, then, for ties, its created_at and id
    (newest first)."""

    created_at: datetime
    id: UUID
    key: Any = None
    """The task's sort_key under the list's sort (None for a task without a due, and unused
    by the created_at sorts)."""


def position_of(task: Task, sort: TaskSort) -> TaskPosition:
    key = None if sort.key == "created_at" else sort_key(task, sort)
    return TaskPosition(task.created_at, task.id, key)


@total_ordering
class _Reversed:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Reversed) and self.value == other.value

    def __lt__(self, other: "_Reversed") -> bool:
        return bool(other.value < self.value)

    def __hash__(self) -> int:
        return hash(self.value)


def list_order(position: TaskPosition, sort: TaskSort) -> tuple[Any, ...]:
    """What sorts tasks (by their positions) in the order the list shows them, first first."""
    value = position.created_at if sort.key == "created_at" else position.key
    missing = value is None
    key = 0 if missing else (_Reversed(value) if sort.descending else value)
    return (missing, key, _Reversed(position.created_at), _Reversed(position.id))


@dataclass(frozen=True, slots=True)
class TaskQuery:
    """A list of the owner's tasks: the filters (all must hold), the sort and the page."""

    completed: bool | None = None
    priorities: frozenset[Priority] = frozenset()
    """Any of these; empty: any priority."""
    tags: tuple[str, ...] = ()
    """Every one of these (compared by tag_key)."""
    search: str | None = None
    """Every whitespace-separated word a substring of the title or the description,
    case-insensitively."""
    due_after: date | None = None
    due_before: date | None = None
    has_due: bool | None = None
    overdue: bool | None = None
    sort: TaskSort = TaskSort.NEWEST
    limit: int = DEFAULT_PAGE_SIZE
    offset: int = 0
    after: TaskPosition | None = None
    """Keyset paging: the page starts after this task (a previous page's position_of its
    last task, under the same sort and filters), and skips `offset` more from there."""
    words: tuple[str, ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        problems = []
        if not 1 <= self.limit <= MAX_PAGE_SIZE:
            problems.append(FieldError("limit", f"Must be between 1 and {MAX_PAGE_SIZE}"))
        if not 0 <= self.offset <= MAX_OFFSET:
            problems.append(FieldError("offset", f"Must be between 0 and {MAX_OFFSET}"))
        if self.search is not None:
            search = self.search.strip()
            if not 1 <= len(search) <= MAX_SEARCH_LENGTH:
                problems.append(
                    FieldError("q", f"Must be 1 to {MAX_SEARCH_LENGTH} characters after trimming")
                )
            elif "\x00" in search:
                problems.append(FieldError("q", "Must not contain the NUL character (U+0000)"))
            object.__setattr__(self, "words", tuple(word.lower() for word in search.split()))
        # A name no tag can have (a control character, a '/') is a bad value, not an unknown tag.
        for raw in self.tags:
            _, found = tag_name_problems(raw, "tag")
            if found:
                problems += found[:1]
                break
        if problems:
            raise ValidationFailed(problems)
        object.__setattr__(
            self, "tags", tuple(dict.fromkeys(tag_key(t.strip()) for t in self.tags))
        )

    @property
    def filtered(self) -> bool:
        """Whether anything but `completed` narrows the list."""
        return bool(
            self.priorities
            or self.tags
            or self.words
            or self.due_after
            or self.due_before
            or self.has_due is not None
            or self.overdue is not None
        )

    def digest(self) -> str:
        """Names the sort and the filters (not the page): a cursor carries it, so that it is
        refused by a list of another sort or other filters."""
        shape = repr(
            (
                self.sort.value,
                self.completed,
                sorted(p.value for p in self.priorities),
                sorted(self.tags),
                self.words,
                self.due_after,
                self.due_before,
                self.has_due,
                self.overdue,
            )
        )
        return hashlib.sha256(shape.encode()).hexdigest()[:16]

    def matches(self, task: Task, now: datetime) -> bool:
        """Whether the task is in the list, `now` deciding what is overdue."""
        if self.completed is not None and task.completed != self.completed:
            return False
        if self.priorities and task.priority not in self.priorities:
            return False
        if self.tags and not set(self.tags) <= {tag_key(t) for t in task.tags}:
            return False
        if self.words:
            text = f"{task.title}\n{task.description or ''}".lower()
            if not all(word in text for word in self.words):
                return False
        due = task.due
        if self.has_due is not None and (due is not None) != self.has_due:
            return False
        if self.due_after is not None and (due is None or due.date < self.due_after):
            return False
        if self.due_before is not None and (due is None or due.date > self.due_before):
            return False
        return self.overdue is None or task.is_overdue(now) == self.overdue
