"""Use cases of a user's todo list, each on the caller's own tasks (TaskRepository.for_caller):
another user's task is refused in the statement itself, and the caller is checked in the
statement doing the work (one round trip)."""

import hashlib
import json
from collections.abc import Collection
from datetime import datetime, timedelta
from uuid import UUID

from application.errors import IdempotencyKeyInUse, IdempotencyKeyReused
from application.ports import (
    Caller,
    CallerTasks,
    Clock,
    IdempotencyStore,
    IdGenerator,
    TaskPage,
    TaskRepository,
    Transactions,
)
from domain.errors import TaskChanged, TaskNotFound
from domain.tasks import (
    Task,
    TaskChanges,
    TaskQuery,
    apply_changes,
    new_task,
    validate_changes,
)

IDEMPOTENCY_WINDOW = timedelta(hours=24)


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
        return await self._tasks.for_caller(caller).list(query)

    async def create(
        self,
        caller: Caller,
        *,
        title: str,
        description: str | None = None,
        completed: bool = False,
        idempotency_key: str | None = None,
    ) -> Task:
        """With an idempotency key, a retry of the same request within 24 hours gets the task
        the first one created and creates nothing; the key with another request is refused
        (IdempotencyKeyReused)."""
        now = self._clock.now()
        owner_id = caller.user_id
        task = new_task(
            task_id=self._ids.new_id(),
            owner_id=owner_id,
            title=title,
            description=description,
            completed=completed,
            now=now,
        )
        tasks = self._tasks.for_caller(caller)
        if idempotency_key is None:
            return await tasks.add(task)
        fingerprint = hashlib.sha256(
            json.dumps([title, description, completed]).encode()
        ).hexdigest()

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
        # Optimistic first: written only if the task is still the version just read, with no
        # lock and no transaction around the read. A concurrent writer in between (rare) sends
        # it down the locked path, where its changes apply to that writer's result instead of
        # undoing it.
        task = await _owned(tasks, task_id)
        _ensure_expected(task, expected_versions)
        # The write checks the caller again: a logout that came after the read counts.
        updated = await tasks.update(
            apply_changes(task, changes), expected_versions=[task.updated_at]
        )
        if updated is not None:
            return updated

        async def update_locked() -> Task:
            task = await _owned(tasks, task_id, for_update=True)
            _ensure_expected(task, expected_versions)
            updated = await tasks.update(apply_changes(task, changes))
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


async def _owned(tasks: CallerTasks, task_id: UUID, *, for_update: bool = False) -> Task:
    task = await tasks.get(task_id, for_update=for_update)
    if task is None:
        raise TaskNotFound()
    return task


def _ensure_expected(task: Task, expected_versions: Collection[datetime] | None) -> None:
    if expected_versions is not None and task.updated_at not in expected_versions:
        raise TaskChanged()
