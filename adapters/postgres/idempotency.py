"""Idempotency keys of task creations, in raw SQL, with the created task kept as a snapshot."""

import datetime as dt
from datetime import datetime, timedelta
from uuid import UUID

import msgspec

from adapters.postgres.pool import PostgresDatabase
from application.ports import EarlierCreation
from domain.due import Due
from domain.tasks import Priority, Task


class DueSnapshot(msgspec.Struct, kw_only=True):
    # Types by their module's names: a field named `time` with a default would shadow them.
    date: dt.date
    time: dt.time | None = None
    timezone: str


class TaskSnapshot(msgspec.Struct, kw_only=True):
    """A created task as its idempotency key keeps it for replays, read by processes older
    and newer than the one that wrote it (a rolling upgrade): a field added later has a
    default here, for snapshots written before it existed, and fields this version does not
    know are ignored."""

    id: UUID
    title: str
    description: str | None = None
    completed: bool = False
    created_at: datetime
    updated_at: datetime
    priority: str = Priority.NONE.value
    due: DueSnapshot | None = None
    tags: list[str] = msgspec.field(default_factory=list)
    completed_at: datetime | None = None

    @classmethod
    def of(cls, task: Task) -> "TaskSnapshot":
        due = task.due
        return cls(
            id=task.id,
            title=task.title,
            description=task.description,
            completed=task.completed,
            created_at=task.created_at,
            updated_at=task.updated_at,
            priority=task.priority.value,
            due=None
            if due is None
            else DueSnapshot(date=due.date, time=due.time, timezone=due.timezone),
            tags=list(task.tags),
            completed_at=task.completed_at,
        )

    def task_of(self, owner_id: UUID) -> Task:
        due = self.due
        # Before completed_at was kept, a task created completed was completed as created.
        completed_at = self.completed_at or (self.created_at if self.completed else None)
        return Task(
            id=self.id,
            owner_id=owner_id,
            title=self.title,
            description=self.description,
            completed=self.completed,
            created_at=self.created_at,
            updated_at=self.updated_at,
            priority=Priority(self.priority),
            due=None if due is None else Due(due.date, due.time, due.timezone),
            tags=tuple(self.tags),
            completed_at=completed_at,
        )


_decode_snapshot = msgspec.json.Decoder(TaskSnapshot).decode
_encode_snapshot = msgspec.json.Encoder().encode


class PostgresIdempotencyStore:
    def __init__(self, database: PostgresDatabase) -> None:
        self._database = database

    async def claim(
        self, owner_id: UUID, key: str, fingerprint: str, now: datetime, ttl: timedelta
    ) -> EarlierCreation | None:
        params = {
            "owner_id": owner_id,
            "key": key,
            "fingerprint": fingerprint,
            "now": now,
            "expired_before": now - ttl,
        }
        async with self._database.connection() as connection:
            # A concurrent claim of the same key waits here until the first one's transaction
            # ends, then finds its row. An expired key is claimed afresh, as if forgotten
            # (the background purge forgets them in bulk).
            inserted = await connection.execute(
                """INSERT INTO idempotency_keys AS k (user_id, key, fingerprint, created_at)
                   VALUES (%(owner_id)s, %(key)s, %(fingerprint)s, %(now)s)
                   ON CONFLICT (user_id, key) DO UPDATE
                   SET fingerprint = EXCLUDED.fingerprint, task = NULL,
                       created_at = EXCLUDED.created_at
                   WHERE k.created_at < %(expired_before)s
                   RETURNING 1""",
                params,
            )
            if await inserted.fetchone() is not None:
                return None
            # The snapshot as its JSON text, for msgspec to decode straight into its type.
            earlier = await connection.execute(
                """SELECT fingerprint, task::text FROM idempotency_keys
                   WHERE user_id = %(owner_id)s AND key = %(key)s""",
                params,
            )
            row = await earlier.fetchone()
        if row is None:  # the first request rolled back meanwhile: the key is free again
            return await self.claim(owner_id, key, fingerprint, now, ttl)
        stored_fingerprint, snapshot = row
        task = None if snapshot is None else _decode_snapshot(snapshot).task_of(owner_id)
        return EarlierCreation(stored_fingerprint, task)

    async def record(self, owner_id: UUID, key: str, task: Task) -> None:
        async with self._database.connection() as connection:
            await connection.execute(
                """UPDATE idempotency_keys SET task = %(task)s::jsonb
                   WHERE user_id = %(owner_id)s AND key = %(key)s""",
                {
                    "owner_id": owner_id,
                    "key": key,
                    "task": _encode_snapshot(TaskSnapshot.of(task)).decode(),
                },
            )

    async def purge_expired(self, claimed_before: datetime) -> int:
        async with self._database.connection() as connection:
            cursor = await connection.execute(
                "DELETE FROM idempotency_keys WHERE created_at < %(before)s",
                {"before": claimed_before},
            )
            return cursor.rowcount
