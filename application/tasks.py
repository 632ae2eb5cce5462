"""Use cases of a user's todo list, each on the caller's own tasks (TaskRepository.for_caller):
another user's task is refused in the statement itself, and the caller is checked in the
statement doing the work (one round trip)."""

import hashlib
import json
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID

from application.errors import IdempotencyKeyInUse, IdempotencyKeyReused
from application.ports import (
    Caller,
    CallerTasks,
    Clock,
    IdempotencyStore,
    IdGenerator,
    TagUsage,
    TaskPage,
    TaskRepository,
    Transactions,
)
from domain.due import DEFAULT_TIMEZONE, Due, WrittenDue, parse_due
from domain.errors import FieldError, TaskChanged, TaskNotFound, ValidationFailed
from domain.queries import TaskQuery
from domain.tags import normalize_tag_name, normalize_tags
from domain.tasks import Priority, Task, TaskChanges, apply_changes, new_task, validate_changes

IDEMPOTENCY_WINDOW = timedelta(hours=24)
_T = TypeVar("_T")


class TaskService:
    def __init__(
        self,
        *,
        tasks: TaskRepository,
        idempotency: IdempotencyStore,
        transactions: Transactions,
        clock: Clock,
        ids: IdGenerator,
    ) -> None:
        self._tasks = tasks
        self._transactions = transactions
        self._idempotency = idempotency
        self._clock = clock
        self._ids = ids

    async def list(self, caller: Caller, query: TaskQuery) -> TaskPage:
        return await self._tasks.for_caller(caller).list(query, self._clock.now())

    async def create(
        self,
        caller: Caller,
        *,
        title: str,
        description: str | None = None,
        completed: bool = False,
        priority: Priority = Priority.NONE,
        due: WrittenDue | None = None,
        tags: Sequence[str] = (),
        idempotency_key: str | None = None,
    ) -> Task:
        """With an idempotency key, a retry of the same request within 24 hours gets the task
        the first one created and creates nothing; the key with another request is refused
        (IdempotencyKeyReused)."""
        now = self._clock.now()
        owner_id = caller.user_id
        tasks = self._tasks.for_caller(caller)
        # Every field problem at once; the user's time zone is read only for a valid request.
        problems: list[FieldError] = []
        try:
            task = new_task(
                task_id=self._ids.new_id(),
                owner_id=owner_id,
                title=title,
                description=description,
                completed=completed,
                now=now,
                priority=priority,
                tags=_collected(problems, normalize_tags, tags) or (),
            )
        except ValidationFailed as failed:
            problems[:0] = failed.errors
        if due is not None:
            _collected(problems, lambda: parse_due(due, default_timezone=DEFAULT_TIMEZONE))
        if problems:
            raise ValidationFailed(problems)
        if due is not None:
            task = replace(task, due=await _resolved(tasks, due))
        if idempotency_key is None:
            return await tasks.add(task)
        fingerprint = _fingerprint(title, description, completed, priority, due, tags)

        # One block: a concurrent retry waits for this one's outcome, and a creation that
        # fails leaves the key free for the next retry.
        async def create_once() -> Task:
            # Checked first: a refused caller neither claims the key nor sees what it holds.
            await tasks.admit()
            earlier = await self._idempotency.claim(
                owner_id, idempotency_key, fingerprint, now, IDEMPOTENCY_WINDOW
            )
            if earlier is not None:
                if earlier.fingerprint != fingerprint:
                    raise IdempotencyKeyReused()
                if earlier.task is None:
                    raise IdempotencyKeyInUse()
                return earlier.task
            created = await tasks.add(task)
            await self._idempotency.record(owner_id, idempotency_key, created)
            return created

        return await self._transactions.atomically(create_once)

    async def get(self, caller: Caller, task_id: UUID) -> Task:
        return await _owned(self._tasks.for_caller(caller), task_id)

    async def update(
        self,
        caller: Caller,
        task_id: UUID,
        changes: TaskChanges,
        *,
        expected_versions: Collection[datetime] | None = None,
    ) -> Task:
        """With expected_versions (the updated_at values the caller has seen), the update
        happens only if the task is still one of them; otherwise TaskChanged, and nothing
        changes: two browser tabs cannot silently overwrite each other."""
        changes = validate_changes(changes)
        tasks = self._tasks.for_caller(caller)
        if isinstance(changes.due, WrittenDue):
            changes = replace(changes, due=await _resolved(tasks, changes.due))
        # Optimistic first: written only if the task is still the version just read, with no
        # lock and no transaction around the read. A concurrent writer in between (rare) sends
        # it down the locked path, where its changes apply to that writer's result instead of
        # undoing it.
        task = await _owned(tasks, task_id)
        _ensure_expected(task, expected_versions)
        # The write checks the caller again: a logout that came after the read counts.
        updated = await tasks.update(
            apply_changes(task, changes, self._clock.now()), expected_versions=[task.updated_at]
        )
        if updated is not None:
            return updated

        async def update_locked() -> Task:
            task = await _owned(tasks, task_id, for_update=True)
            _ensure_expected(task, expected_versions)
            updated = await tasks.update(apply_changes(task, changes, self._clock.now()))
            if updated is None:  # cannot happen while the row is locked; a fake has no locks
                raise TaskNotFound()
            return updated

        return await self._transactions.atomically(update_locked)

    async def delete(
        self,
        caller: Caller,
        task_id: UUID,
        *,
        expected_versions: Collection[datetime] | None = None,
    ) -> None:
        tasks = self._tasks.for_caller(caller)
        await _owned(tasks, task_id)
        if not await tasks.delete(task_id, expected_versions=expected_versions):
            # Deleted meanwhile, or changed since the version the caller expected.
            raise TaskNotFound() if await tasks.get(task_id) is None else TaskChanged()

    async def tags(self, caller: Caller) -> Sequence[TagUsage]:
        return await self._tasks.for_caller(caller).tags()

    async def rename_tag(self, caller: Caller, name: str, new_name: str) -> TagUsage:
        return await self._tasks.for_caller(caller).rename_tag(name, normalize_tag_name(new_name))

    async def delete_tag(self, caller: Caller, name: str) -> None:
        await self._tasks.for_caller(caller).delete_tag(name)


async def _resolved(tasks: CallerTasks, written: WrittenDue) -> Due:
    """The due written, in the user's time zone unless it names its own."""
    default = DEFAULT_TIMEZONE if written.timezone is not None else await tasks.timezone()
    return parse_due(written, default_timezone=default)


def _collected(problems: list[FieldError], check: Callable[..., _T], *args: Any) -> _T | None:
    """What check(*args) gives, or None with its field problems added to `problems`."""
    try:
        return check(*args)
    except ValidationFailed as failed:
        problems += failed.errors
        return None


def _fingerprint(
    title: str,
    description: str | None,
    completed: bool,
    priority: Priority,
    due: WrittenDue | None,
    tags: Sequence[str],
) -> str:
    # A request without the fields of later versions keeps the fingerprint it had before
    # them, so a retry across an upgrade is still recognised.
    parts: list[object] = [title, description, completed]
    if priority is not Priority.NONE or due is not None or tags:
        parts += [priority.value, due and [due.date, due.time, due.timezone], list(tags)]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


async def _owned(tasks: CallerTasks, task_id: UUID, *, for_update: bool = False) -> Task:
    task = await tasks.get(task_id, for_update=for_update)
    if task is None:
        raise TaskNotFound()
    return task


def _ensure_expected(task: Task, expected_versions: Collection[datetime] | None) -> None:
    if expected_versions is not None and task.updated_at not in expected_versions:
        raise TaskChanged()
