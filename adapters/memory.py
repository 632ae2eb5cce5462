"""In-memory adapters that really store things: for unit tests and demos, never production."""

from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TypeVar
from uuid import UUID

from adapters.system import SystemClock
from application.ports import (
    Caller,
    Clock,
    EarlierCreation,
    FailedLogins,
    TagUsage,
    TaskPage,
    TokenSubject,
    ensure_admitted,
)
from domain.errors import EmailAlreadyRegistered, TagAlreadyExists, TagNotFound
from domain.queries import TaskQuery, list_order, position_of
from domain.tags import sorted_tags, tag_key
from domain.tasks import Task, next_version
from domain.users import User

_T = TypeVar("_T")


class InMemoryUserRepository:
    def __init__(self, users: Iterable[User] = ()) -> None:
        self._users: dict[UUID, User] = {user.id: user for user in users}
        # Deleting a user cascades to their tasks, as the foreign key does in PostgreSQL.
        self._tasks: InMemoryTaskRepository | None = None

    async def add(self, user: User) -> User:
        # Case-insensitive, like PostgreSQL's unique index on lower(email).
        if await self.get_by_email(user.email) is not None:
            raise EmailAlreadyRegistered()
        self._users[user.id] = user
        return user

    async def get(self, user_id: UUID) -> User | None:
        return self.stored(user_id)

    def stored(self, user_id: UUID) -> User | None:
        return self._users.get(user_id)

    def cascade_to(self, tasks: "InMemoryTaskRepository") -> None:
        self._tasks = tasks

    async def get_by_email(self, email: str) -> User | None:
        return next((u for u in self._users.values() if u.email.lower() == email.lower()), None)

    async def change_email(self, user_id: UUID, email: str) -> bool:
        stored = self._users.get(user_id)
        owner = await self.get_by_email(email)
        if stored is None or (owner is not None and owner.id != user_id):
            return False
        self._users[user_id] = replace(stored, email=email)
        return True

    async def cut_off_tokens(
        self, user_id: UUID, moment: datetime, *, password_hash: str | None = None
    ) -> User | None:
        stored = self._users.get(user_id)
        if stored is None:
            return None
        updated = replace(
            stored,
            password_hash=stored.password_hash if password_hash is None else password_hash,
            tokens_valid_after=max(moment, stored.tokens_valid_after or moment),
            token_generation=stored.token_generation + 1,
            # As the database trigger does: strictly forward on every change.
            updated_at=max(moment, stored.updated_at + timedelta(microseconds=1)),
        )
        self._users[user_id] = updated
        return updated

    async def change_timezone(self, user_id: UUID, timezone: str) -> User | None:
        stored = self._users.get(user_id)
        if stored is None:
            return None
        updated = replace(
            stored,
            timezone=timezone,
            updated_at=max(datetime.now(UTC), stored.updated_at + timedelta(microseconds=1)),
        )
        self._users[user_id] = updated
        return updated

    async def delete(self, user_id: UUID) -> bool:
        if self._users.pop(user_id, None) is None:
            return False
        if self._tasks is not None:
            self._tasks.delete_all_of(user_id)
        return True


class InMemoryTaskRepository:
    """Tasks of the users of `users`; deleting one of those users deletes their tasks. Moves
    updated_at on every change as the database's trigger does, by the clock."""

    def __init__(
        self,
        users: InMemoryUserRepository,
        revocations: "InMemoryRevocationStore",
        clock: "Clock | None" = None,
    ) -> None:
        self._tasks: dict[UUID, Task] = {}
        # The users' vocabularies: (owner, tag_key) -> the spelling the owner used first.
        self._tag_names: dict[tuple[UUID, str], str] = {}
        self._users = users
        self._revocations = revocations
        self._clock = clock or SystemClock()
        users.cascade_to(self)

    def for_caller(self, caller: Caller) -> "InMemoryCallerTasks":
        return InMemoryCallerTasks(self, caller)

    def admit(self, caller: Caller) -> None:
        user = self._users.stored(caller.user_id)
        ensure_admitted(
            revoked=caller.token_key is not None and self._revocations.is_revoked(caller.token_key),
            known=user is not None,
            current=user is not None and user.accepts_token(caller.issued_at, caller.generation),
        )

    def delete_all_of(self, owner_id: UUID) -> None:
        for task_id in [t.id for t in self._tasks.values() if t.owner_id == owner_id]:
            del self._tasks[task_id]
        for key in [key for key in self._tag_names if key[0] == owner_id]:
            del self._tag_names[key]

    def stored(self, task_id: UUID) -> Task | None:
        """The task as stored, whoever owns it (for tests: not a port method)."""
        return self._tasks.get(task_id)

    def stored_of(self, owner_id: UUID) -> list[Task]:
        """Every stored task of the owner (for tests: not a port method)."""
        return [t for t in self._tasks.values() if t.owner_id == owner_id]


class InMemoryCallerTasks:
    """One caller's tasks, checked on every call as the PostgreSQL statements check them."""

    def __init__(self, repository: InMemoryTaskRepository, caller: Caller) -> None:
        self._repository = repository
        self._caller = caller

    @property
    def _tasks(self) -> dict[UUID, Task]:
        # Looked up each time: a rolled-back atomic block puts back a copy of the dict.
        return self._repository._tasks

    async def admit(self) -> None:
        self._repository.admit(self._caller)

    async def timezone(self) -> str:
        self._repository.admit(self._caller)
        user = self._repository._users.stored(self._caller.user_id)
        assert user is not None  # admitted
        return user.timezone

    def _owned(self, task_id: UUID) -> Task | None:
        self._repository.admit(self._caller)
        task = self._tasks.get(task_id)
        if task is not None:
            task.ensure_owned_by(self._caller.user_id)
        return task

    @property
    def _tag_names(self) -> dict[tuple[UUID, str], str]:
        return self._repository._tag_names

    def _spelled(self, tags: tuple[str, ...]) -> tuple[str, ...]:
        # The caller's first spelling of each tag; a new one joins the vocabulary.
        owner = self._caller.user_id
        return sorted_tags(self._tag_names.setdefault((owner, tag_key(t)), t) for t in tags)

    async def add(self, task: Task) -> Task:
        self._repository.admit(self._caller)
        task.ensure_owned_by(self._caller.user_id)
        stored = replace(task, tags=self._spelled(task.tags))
        self._tasks[task.id] = stored
        return stored

    async def get(self, task_id: UUID, *, for_update: bool = False) -> Task | None:
        # One event loop, no await between a read and its write: nothing to lock.
        return self._owned(task_id)

    async def list(self, query: TaskQuery, now: datetime) -> TaskPage:
        self._repository.admit(self._caller)
        mine = (t for t in self._tasks.values() if t.owner_id == self._caller.user_id)
        matching = [t for t in mine if query.matches(t, now)]

        def order(task: Task) -> tuple[object, ...]:
            return list_order(position_of(task, query.sort), query.sort)

        matching.sort(key=order)
        after = query.after
        if after is not None:
            start = list_order(after, query.sort)
            matching_after = [t for t in matching if order(t) > start]
        else:
            matching_after = matching
        following = matching_after[query.offset :]
        return TaskPage(
            tasks=following[: query.limit],
            total=len(matching),
            has_more=len(following) > query.limit,
        )

    async def update(
        self, task: Task, *, expected_versions: Collection[datetime] | None = None
    ) -> Task | None:
        stored = self._mine(task.id)
        if stored is None or not _is_expected(stored, expected_versions):
            return None
        updated = replace(
            task,
            owner_id=stored.owner_id,
            created_at=stored.created_at,
            tags=self._spelled(task.tags),
            updated_at=self._next_version(stored),
        )
        self._tasks[task.id] = updated
        return updated

    def _next_version(self, stored: Task) -> datetime:
        return next_version(stored.updated_at, self._repository._clock.now())

    async def tags(self) -> Sequence[TagUsage]:
        self._repository.admit(self._caller)
        owner = self._caller.user_id
        mine = [t for t in self._tasks.values() if t.owner_id == owner]
        usages = []
        for (tag_owner, key), name in self._tag_names.items():
            if tag_owner != owner:
                continue
            carrying = [t for t in mine if key in {tag_key(n) for n in t.tags}]
            usages.append(TagUsage(name, sum(not t.completed for t in carrying), len(carrying)))
        return sorted(usages, key=lambda usage: (tag_key(usage.name), usage.name))

    async def rename_tag(self, name: str, new_name: str) -> TagUsage:
        self._repository.admit(self._caller)
        owner, old_key, new_key = self._caller.user_id, tag_key(name), tag_key(new_name)
        if (owner, old_key) not in self._tag_names:
            raise TagNotFound()
        if new_key != old_key and (owner, new_key) in self._tag_names:
            raise TagAlreadyExists()
        del self._tag_names[(owner, old_key)]
        self._tag_names[(owner, new_key)] = new_name
        self._retag(old_key, new_name)
        return next(u for u in await self.tags() if tag_key(u.name) == new_key)

    async def delete_tag(self, name: str) -> None:
        self._repository.admit(self._caller)
        key = tag_key(name)
        if self._tag_names.pop((self._caller.user_id, key), None) is None:
            raise TagNotFound()
        self._retag(key, None)

    def _retag(self, key: str, new_name: str | None) -> None:
        """Replaces (or, with None, removes) the tag on every task of the caller's carrying it."""
        for task in list(self._tasks.values()):
            if task.owner_id != self._caller.user_id or key not in map(tag_key, task.tags):
                continue
            kept = [t for t in task.tags if tag_key(t) != key]
            tags = sorted_tags(kept if new_name is None else [*kept, new_name])
            self._tasks[task.id] = replace(task, tags=tags, updated_at=self._next_version(task))

    async def delete(
        self, task_id: UUID, *, expected_versions: Collection[datetime] | None = None
    ) -> bool:
        stored = self._mine(task_id)
        if stored is None or not _is_expected(stored, expected_versions):
            return False
        del self._tasks[task_id]
        return True

    def _mine(self, task_id: UUID) -> Task | None:
        # Writes match on the owner too: another user's task is as good as absent.
        self._repository.admit(self._caller)
        stored = self._tasks.get(task_id)
        return stored if stored is not None and stored.owner_id == self._caller.user_id else None


def _is_expected(task: Task, expected_versions: Collection[datetime] | None) -> bool:
    return expected_versions is None or task.updated_at in expected_versions


class InMemoryRevocationStore:
    def __init__(self, clock: "FixedClock | None" = None) -> None:
        self._revoked: dict[str, datetime] = {}
        self._clock = clock

    async def revoke(self, token_key: str, expires_at: datetime) -> None:
        self._revoked.setdefault(token_key, expires_at)

    async def purge_expired(self, now: datetime) -> int:
        kept = {k: exp for k, exp in self._revoked.items() if exp >= now}
        purged, self._revoked = len(self._revoked) - len(kept), kept
        return purged

    def is_revoked(self, token_key: str) -> bool:
        return token_key in self._revoked


class InMemoryTokenSubjects:
    def __init__(self, users: InMemoryUserRepository, revocations: InMemoryRevocationStore) -> None:
        self._users = users
        self._revocations = revocations

    async def find(self, user_id: UUID, token_key: str) -> TokenSubject:
        return TokenSubject(
            user=await self._users.get(user_id),
            token_revoked=self._revocations.is_revoked(token_key),
        )


class InMemoryLinkedIdentities:
    def __init__(self, users: InMemoryUserRepository, revocations: InMemoryRevocationStore) -> None:
        self._users = users
        self._revocations = revocations
        self._links: dict[tuple[str, str], UUID] = {}

    async def find(self, issuer: str, subject: str, token_key: str) -> TokenSubject:
        account = await self.account_of(issuer, subject)
        return TokenSubject(
            user=None if account is None else await self._users.get(account),
            token_revoked=self._revocations.is_revoked(token_key),
        )

    async def account_of(self, issuer: str, subject: str) -> UUID | None:
        account = self._links.get((issuer, subject))
        # A link goes with its account, as the foreign key's cascade does in PostgreSQL.
        return account if account is not None and await self._users.get(account) else None

    async def link(self, issuer: str, subject: str, user_id: UUID) -> UUID:
        linked = await self.account_of(issuer, subject)
        if linked is not None:
            return linked
        self._links[(issuer, subject)] = user_id
        return user_id

    async def is_linked(self, user_id: UUID) -> bool:
        return user_id in self._links.values() and await self._users.get(user_id) is not None


class InMemoryTransactions:
    """Atomic blocks over in-memory stores: when a block raises, the stores are put back as
    they were when it began. Unlike PostgreSQL, that also undoes what other tasks wrote to them
    meanwhile, and the block's writes are visible to others before it ends: a fake for tests
    that run one use case at a time."""

    def __init__(self, *stores: object) -> None:
        self._stores = stores

    @asynccontextmanager
    async def atomic(self) -> AsyncIterator[None]:
        # The stores keep their state in dicts of immutable values: copies of the dicts are
        # a complete snapshot.
        saved = [
            {name: dict(value) for name, value in vars(store).items() if isinstance(value, dict)}
            for store in self._stores
        ]
        try:
            yield
        except BaseException:
            for store, state in zip(self._stores, saved, strict=True):
                vars(store).update(state)
            raise

    async def atomically(self, work: Callable[[], Awaitable[_T]]) -> _T:
        # One event loop and no locks: in-memory blocks never conflict, so never run twice.
        async with self.atomic():
            return await work()


class InMemoryLoginAttemptStore:
    def __init__(self) -> None:
        self._failures: dict[str, FailedLogins] = {}
        self._attempts: dict[tuple[str, datetime], int] = {}

    def failures_of(self, account_key: str) -> FailedLogins | None:
        """What is counted for the key (for tests: not a port method)."""
        return self._failures.get(account_key)

    async def record_failed_login(
        self, account_key: str, now: datetime, window: timedelta
    ) -> FailedLogins:
        current = self._failures.get(account_key)
        recorded = (
            FailedLogins(1, now)
            if current is None or current.window_started_at + window <= now
            else FailedLogins(current.count + 1, current.window_started_at)
        )
        self._failures[account_key] = recorded
        return recorded

    async def release_failed_login(self, account_key: str) -> None:
        current = self._failures.get(account_key)
        if current is None:
            return
        if current.count > 1:
            self._failures[account_key] = replace(current, count=current.count - 1)
        else:
            del self._failures[account_key]

    async def clear_failed_logins(self, account_key: str) -> None:
        self._failures.pop(account_key, None)

    async def count_attempt(self, client: str, window_started_at: datetime) -> int:
        key = (client, window_started_at)
        self._attempts[key] = self._attempts.get(key, 0) + 1
        return self._attempts[key]

    async def purge_expired(
        self, *, failures_started_before: datetime, attempts_started_before: datetime
    ) -> int:
        failures = {
            k: f
            for k, f in self._failures.items()
            if f.window_started_at >= failures_started_before
        }
        attempts = {k: n for k, n in self._attempts.items() if k[1] >= attempts_started_before}
        purged = len(self._failures) - len(failures) + len(self._attempts) - len(attempts)
        self._failures, self._attempts = failures, attempts
        return purged


class InMemoryIdempotencyStore:
    def __init__(self) -> None:
        self._claims: dict[tuple[UUID, str], tuple[EarlierCreation, datetime]] = {}

    async def claim(
        self, owner_id: UUID, key: str, fingerprint: str, now: datetime, ttl: timedelta
    ) -> EarlierCreation | None:
        earlier = self._claims.get((owner_id, key))
        if earlier is not None and earlier[1] >= now - ttl:
            return earlier[0]
        self._claims[(owner_id, key)] = (EarlierCreation(fingerprint, None), now)
        return None

    async def record(self, owner_id: UUID, key: str, task: Task) -> None:
        claim, claimed_at = self._claims[(owner_id, key)]
        self._claims[(owner_id, key)] = (replace(claim, task=task), claimed_at)

    async def purge_expired(self, claimed_before: datetime) -> int:
        kept = {k: v for k, v in self._claims.items() if v[1] >= claimed_before}
        purged, self._claims = len(self._claims) - len(kept), kept
        return purged


class FixedClock:
    """A clock that moves only when told to."""

    def __init__(self, now: datetime) -> None:
        self._now = now

    def now(self) -> datetime:
        return self._now

    def set(self, now: datetime) -> None:
        self._now = now


class PlainTextHasher:
    """A fast stand-in for bcrypt in unit tests: reversible, so never anywhere else."""

    async def hash(self, password: str) -> str:
        return "plain$" + password

    async def verify(self, password: str, password_hash: str) -> bool:
        return password_hash == "plain$" + password


class InMemoryPeriodicJobs:
    """Shared by the runners of one test as the database is by processes."""

    def __init__(self) -> None:
        self._claimed_at: dict[str, datetime] = {}

    async def claim(self, name: str, now: datetime, every: timedelta) -> bool:
        last = self._claimed_at.get(name)
        if last is not None and last > now - every:
            return False
        self._claimed_at[name] = now
        return True
