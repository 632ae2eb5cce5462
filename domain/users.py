"""Users of the todo app and the rules on their credentials."""

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from domain.errors import FieldError

MAX_EMAIL_LENGTH = 254
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 128


@dataclass(frozen=True, slots=True)
class User:
    id: UUID
    email: str
    password_hash: str | None
    """None: the account has no password and signs in through Better Auth only."""
    created_at: datetime
    updated_at: datetime
    tokens_valid_after: datetime | None = None
    """When the user last cut off every token (logout-all, password change)."""
    token_generation: int = 0
    """How many such cut-offs there have been; todo-api's own tokens carry the generation they
    were issued in."""
    timezone: str = "UTC"
    """An IANA name (domain.due.timezone_problems): the zone of the dues written without one."""

    def accepts_token(self, issued_at: datetime, generation: int | None) -> bool:
        """Whether a token survived every cut-off. One of todo-api's own (it carries its
        generation) must be of the current generation: exact, however close in time the
        cut-off came. One minted elsewhere must be issued strictly after the last cut-off:
        with whole-second times, one issued in the same second as the cut-off is refused,
        since its `iat` cannot tell before from after."""
        if generation is not None:
            return generation == self.token_generation
        return self.tokens_valid_after is None or issued_at > self.tokens_valid_after


def password_problems(password: str, field: str = "password") -> list[FieldError]:
    """The rules a new password must meet. Length counts characters, so any script is welcome."""
    problems = []
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        problems.append(
            FieldError(
                field,
                f"Password must be {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters long",
            )
        )
    if "\x00" in password:
        problems.append(FieldError(field, "Must not contain the NUL character (U+0000)"))
    return problems
