"""The ports: what the use cases need from the outside world, owned by the application core."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from domain.tasks import Task
from domain.users import User


@dataclass(frozen=True, slots=True)
class TaskPage:
    tasks: Sequence[Task]
    total: int
    """How many of the owner's tasks match the filter, on every page."""


@dataclass(frozen=True, slots=True)
class TokenClaims:
    subject: str
    issued_at: datetime
    expires_at: datetime
    token_id: str | None
    """The `jti` claim; tokens minted elsewhere may not carry one."""


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    expires_in_seconds: int


class UserRepository(Protocol):
    async def add(self, user: User) -> User:
        """Stores a new user. Raises EmailAlreadyRegistered when the email is taken."""
        ...

    async def get(self, user_id: UUID) -> User | None: ...

    async def get_by_email(self, email: str) -> User | None:
        """Looks a user up by the normalised (lowercase) email."""
        ...

    async def delete(self, user_id: UUID) -> bool:
        """Deletes the user and, with them, all their tasks. False when there was no such user."""
        ...


class TaskRepository(Protocol):
    async def add(self, task: Task) -> Task: ...

    async def get(self, task_id: UUID) -> Task | None:
        """Any user's task: the use case applies the ownership rule."""
        ...

    async def list_for_owner(
        self, owner_id: UUID, *, completed: bool | None, limit: int, offset: int
    ) -> TaskPage:
        """The owner's tasks, newest first (created_at, then id, descending) so pages are stable."""
        ...

    async def update(self, task: Task) -> Task | None:
        """Stores the task's title, description and completed flag; returns the stored task,
        or None when it no longer exists."""
        ...

    async def delete(self, task_id: UUID) -> bool: ...


class PasswordHasher(Protocol):
    """Slow by design; implementations must not block the event loop."""

    async def hash(self, password: str) -> str: ...

    async def verify(self, password: str, password_hash: str) -> bool: ...


class TokenService(Protocol):
    def issue(self, user_id: UUID, now: datetime) -> IssuedToken: ...

    def decode(self, token: str) -> TokenClaims:
        """Raises TokenExpired, InvalidTokenSignature or InvalidToken."""
        ...


class RevocationStore(Protocol):
    """Logged-out tokens, shared by every process of the service."""

    async def revoke(self, token_key: str, expires_at: datetime) -> None:
        """Remembers the token until it would expire anyway, and forgets expired ones."""
        ...

    async def is_revoked(self, token_key: str) -> bool: ...


class EmailPolicy(Protocol):
    def normalize(self, raw: str) -> str:
        """The canonical (trimmed, lowercase) address, or ValidationFailed on field `email`."""
        ...


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...


class IdGenerator(Protocol):
    def new_id(self) -> UUID: ...
