"""Errors raised when a request breaks a rule of the todo domain."""

from dataclasses import dataclass


class DomainError(Exception):
    """Base of every rule the domain enforces."""


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    message: str


class ValidationFailed(DomainError):
    """One or more fields break a rule; carries every broken rule, not only the first."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors

    @classmethod
    def single(cls, field: str, message: str) -> "ValidationFailed":
        return cls([FieldError(field, message)])


class TaskNotFound(DomainError):
    pass


class TaskAccessDenied(DomainError):
    """The task exists but belongs to another user."""


class TaskChanged(DomainError):
    """The task is no longer the version the request was based on (a stale If-Match)."""


class TagNotFound(DomainError):
    pass


class TagAlreadyExists(DomainError):
    """A rename to the name of another of the user's tags."""


class EmailAlreadyRegistered(DomainError):
    pass


class WeakPassword(ValidationFailed):
    """The password meets the length rules but is too easy to guess."""
