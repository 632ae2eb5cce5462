"""Owners of tasks for the use-case tests: accounts that exist, and callers acting for them
(the task repository admits only callers whose account exists)."""

from datetime import UTC, datetime
from typing import TypeVar
from uuid import UUID

from adapters.memory import InMemoryRevocationStore, InMemoryTaskRepository, InMemoryUserRepository
from application.ports import Caller, Clock
from domain.users import User

SIGNED_UP = datetime(2025, 1, 1, tzinfo=UTC)

Repository = TypeVar("Repository", bound=InMemoryTaskRepository)


def task_repository(
    *owners: UUID, kind: type[Repository], clock: Clock | None = None
) -> Repository:
    """A task repository of the given kind over accounts with these ids, no token revoked,
    moving versions by the clock."""
    accounts = [User(owner, f"{owner}@example.com", None, SIGNED_UP, SIGNED_UP) for owner in owners]
    return kind(InMemoryUserRepository(accounts), InMemoryRevocationStore(), clock)


def caller(owner: UUID) -> Caller:
    """The owner, calling with a token issued after they signed up."""
    return Caller(owner, f"token of {owner}", SIGNED_UP, generation=0)
