"""The JSON shapes of the HTTP API. msgspec lives here, at the edge; the domain stays plain."""

import base64
from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from application.accounts import Session
from domain.errors import ValidationFailed
from domain.tasks import MAX_DESCRIPTION_LENGTH, MAX_TITLE_LENGTH, Task, TaskPosition
from domain.users import MAX_EMAIL_LENGTH, MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, User

_NO_NUL = r"^[^\x00]*$"


def _documented(description: str, *, example: str | None = None, **rules: object) -> Meta:
    """Describes a field's rules in the OpenAPI document only (JSON Schema keywords such as
    minLength or pattern): the domain enforces them, with its own messages."""
    schema: dict[str, object] = {"description": description, "extra": rules}
    if example is not None:
        schema["examples"] = [example]
    return Meta(description=description, extra_json_schema=schema)


_Title = Annotated[
    str,
    _documented(
        f"Trimmed; 1 to {MAX_TITLE_LENGTH} characters after trimming; no U+0000.",
        example="Buy milk",
        minLength=1,
        maxLength=MAX_TITLE_LENGTH,
        pattern=r"^[^\x00]*[^\s\x00][^\x00]*$",
    ),
]
_Description = Annotated[
    str | None,
    _documented(
        f"null or at most {MAX_DESCRIPTION_LENGTH} characters; no U+0000.",
        maxLength=MAX_DESCRIPTION_LENGTH,
        pattern=_NO_NUL,
    ),
]
_Email = Annotated[
    str,
    _documented(
        f"Valid address syntax, at most {MAX_EMAIL_LENGTH} characters; case-insensitive. "
        "Special-use domains (.test, .local, .invalid, .localhost, .onion, .arpa) are refused.",
        example="ada@example.com",
        format="email",
        maxLength=MAX_EMAIL_LENGTH,
    ),
]
_NewPassword = Annotated[
    str,
    _documented(
        f"{MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters, never truncated, and not "
        "easy to guess (zxcvbn score 2 or more, the email counting as known): else 422 "
        "`Password is too weak`.",
        example="correct horse battery staple",
        format="password",
        minLength=MIN_PASSWORD_LENGTH,
        maxLength=MAX_PASSWORD_LENGTH,
        pattern=_NO_NUL,
    ),
]
_CurrentPassword = Annotated[str, _documented("The account's current password.", format="password")]


class NewAccount(Struct, kw_only=True):
    email: _Email
    password: _NewPassword


class Credentials(Struct, kw_only=True):
    email: _Email
    password: _CurrentPassword


class PasswordConfirmation(Struct, kw_only=True):
    password: _CurrentPassword


class PasswordChange(Struct, kw_only=True):
    current_password: _CurrentPassword
    new_password: _NewPassword


class UserResponse(Struct, kw_only=True, frozen=True):
    id: UUID
    email: str
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> "UserResponse":
        return cls(id=user.id, email=user.email, created_at=user.created_at)


class AccountResponse(Struct, kw_only=True, frozen=True):
    """The caller's account: a UserResponse, and how they sign in."""

    id: UUID
    email: str
    created_at: datetime
    sign_in: Literal["password", "better-auth"]


class AuthResponse(Struct, kw_only=True, frozen=True):
    access_token: str
    user: UserResponse
    expires_in: int
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the scheme's name

    @classmethod
    def of(cls, session: Session) -> "AuthResponse":
        return cls(
            access_token=session.token.token,
            expires_in=session.token.expires_in_seconds,
            user=UserResponse.of(session.user),
        )


class MessageResponse(Struct, kw_only=True, frozen=True):
    message: str


class HealthResponse(Struct, kw_only=True, frozen=True):
    status: Literal["healthy", "unhealthy"]
    database: Literal["ok", "unreachable"]


class LivenessResponse(Struct, kw_only=True, frozen=True):
    status: Literal["alive"]


class NewTask(Struct, kw_only=True):
    title: _Title
    description: _Description = None
    completed: bool = False


class TaskChangesRequest(Struct, kw_only=True):
    """Absent fields stay as they are; "description": null clears the description."""

    title: _Title | UnsetType = UNSET
    description: _Description | UnsetType = UNSET
    completed: bool | UnsetType = UNSET


class TaskResponse(Struct, kw_only=True, frozen=True):
    id: UUID
    title: str
    description: str | None
    completed: bool
    user_id: UUID
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, task: Task) -> "TaskResponse":
        return cls(
            id=task.id,
            title=task.title,
            description=task.description,
            completed=task.completed,
            user_id=task.owner_id,
            created_at=task.created_at,
            updated_at=task.updated_at,
        )


class TaskListResponse(Struct, kw_only=True, frozen=True):
    tasks: list[TaskResponse]
    total: int
    limit: int
    offset: int
    next_cursor: str | None
    """Opaque; pass it as `cursor` for the next page. Null on the last page."""


def encode_cursor(position: TaskPosition) -> str:
    raw = f"{position.created_at.isoformat()}|{position.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> TaskPosition:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created_at, task_id = raw.split("|")
        position = TaskPosition(datetime.fromisoformat(created_at), UUID(task_id))
    except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors too
        raise ValidationFailed.single("cursor", "Not a cursor this API gave out") from None
    if position.created_at.utcoffset() is None:
        raise ValidationFailed.single("cursor", "Not a cursor this API gave out")
    return position


class FieldProblem(Struct, kw_only=True, frozen=True):
    field: str
    message: str


class ProblemDetails(Struct, kw_only=True, frozen=True, omit_defaults=True):
    """RFC 9457 problem details: every error body of the API."""

    status: int
    title: str
    detail: str
    type: str = "about:blank"
    errors: list[FieldProblem] | UnsetType = UNSET
    request_id: str | UnsetType = UNSET
    """On server-side failures (5xx): quote it when reporting the problem."""


encode_json = msgspec.json.Encoder().encode
