"""Use cases of a user's todo list. Every one of them applies the ownership rule, to the caller
that the task repository admits in the statement doing the work (one round trip)."""

import hashlib
import json
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from application.errors import IdempotencyKeyInUse, IdempotencyKeyReused
from application.ports import (
    Caller,
    Clock,
    IdempotencyStore,
    IdGenerator,
    TaskPage,
    TaskRepository,
    Transactions,
)
from domain.errors import FieldError, TaskChanged, TaskNotFound, ValidationFailed
from domain.tasks import (
    Task,
    TaskChanges,
    TaskPosition,
    apply_changes,
    new_task,
    validate_changes,
)

MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100
MAX_OFFSET = 2**53 - 1  # the largest integer every JSON client reads exactly


@dataclass(frozen=True, slots=True)
class TaskQuery:
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
        return await self._tasks.list_for_owner(
            caller.user_id,
            completed=query.completed,
            limit=query.limit,
            offset=query.offset,
            after=query.after,
            caller=caller,
        )

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
        if idempotency_key is None:
            return await self._tasks.add(task, caller=caller)
        fingerprint = hashlib.sha256(
            json.dumps([title, description, completed]).encode()
        ).hexdigest()
        # One block: a concurrent retry waits for this one's outcome, and a creation that
        # fails leaves the key free for the next retry.
        async with self._transactions.atomic():
            # Checked first: a refused caller neither claims the key nor sees what it holds.
            await self._tasks.admit(caller)
            earlier = await self._idempotency.claim(
                owner_id, idempotency_key, fingerprint, now, IDEMPOTENCY_WINDOW
            )
            if earlier is not None:
                if earlier.fingerprint != fingerprint:
                    raise IdempotencyKeyReused()
                if earlier.task is None:
                    raise IdempotencyKeyInUse()
                return earlier.task
            created = await self._tasks.add(task)
            await self._idempotency.record(owner_id, idempotency_key, created)
            return created

    async def get(self, caller: Caller, task_id: UUID) -> Task:
        return await self._owned(caller, task_id)

    async def _owned(self, caller: Caller, task_id: UUID, *, for_update: bool = False) -> Task:
        task = await self._tasks.get(task_id, for_update=for_update, caller=caller)
        if task is None:
            raise TaskNotFound()
        task.ensure_owned_by(caller.user_id)
        return task

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
        # Optimistic first: written only if the task is still the version just read, with no
        # lock and no transaction around the read. A concurrent writer in between (rare) sends
        # it down the locked path, where its changes apply to that writer's result instead of
        # undoing it.
        task = await self._owned(caller, task_id)
        _ensure_expected(task, expected_versions)
        # The write checks the caller again: a logout that came after the read counts.
        updated = await self._tasks.update(
            apply_changes(task, changes, self._clock.now()),
            expected_versions=[task.updated_at],
            caller=caller,
        )
        if updated is not None:
            return updated
        async with self._transactions.atomic():
            task = await self._owned(caller, task_id, for_update=True)
            _ensure_expected(task, expected_versions)
            updated = await self._tasks.update(apply_changes(task, changes, self._clock.now()))
            if updated is None:  # cannot happen while the row is locked; a fake has no locks
                raise TaskNotFound()
            return updated

    async def delete(
        self,
        caller: Caller,
        task_id: UUID,
        *,
        expected_versions: Collection[datetime] | None = None,
    ) -> None:
        await self.get(caller, task_id)
        if not await self._tasks.delete(
            task_id, expected_versions=expected_versions, caller=caller
        ):
            raise await self._why_unchanged(task_id)

    async def _why_unchanged(self, task_id: UUID) -> Exception:
        # Deleted meanwhile, or changed since the version the caller expected.
        return TaskNotFound() if await self._tasks.get(task_id) is None else TaskChanged()


def _ensure_expected(task: Task, expected_versions: Collection[datetime] | None) -> None:
    if expected_versions is not None and task.updated_at not in expected_versions:
        raise TaskChanged()
