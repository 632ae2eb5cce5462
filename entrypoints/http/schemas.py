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

# The domain enforces the rules; these annotations only describe them in the OpenAPI document.
_Title = Annotated[
    str,
    Meta(
        description=f"Trimmed; 1 to {MAX_TITLE_LENGTH} characters after trimming; no U+0000.",
        examples=["Buy milk"],
    ),
]
_Description = Annotated[
    str | None,
    Meta(description=f"null or at most {MAX_DESCRIPTION_LENGTH} characters; no U+0000."),
]
_Email = Annotated[
    str,
    Meta(
        description=f"Valid address syntax, at most {MAX_EMAIL_LENGTH} characters; "
        "case-insensitive.",
        examples=["ada@example.com"],
    ),
]
_Password = Annotated[
    str,
    Meta(
        description=f"{MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters, never truncated.",
        examples=["correct horse battery staple"],
    ),
]


class Credentials(Struct, kw_only=True):
    email: _Email
    password: _Password


class PasswordConfirmation(Struct, kw_only=True):
    password: Annotated[str, Meta(description="The account's current password.")]


class PasswordChange(Struct, kw_only=True):
    current_password: Annotated[str, Meta(description="The account's current password.")]
    new_password: _Password


class UserResponse(Struct, kw_only=True, frozen=True):
    id: UUID
    email: str
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> "UserResponse":
        return cls(id=user.id, email=user.email, created_at=user.created_at)


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
