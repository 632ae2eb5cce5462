"""The JSON shapes of the HTTP API. msgspec lives here, at the edge; the domain stays plain."""

import base64
from datetime import date, datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from application.accounts import Session
from application.ports import TagUsage
from domain.due import Due, WrittenDue
from domain.errors import ValidationFailed
from domain.queries import TaskPosition, TaskQuery, TaskSort
from domain.tags import MAX_TAG_LENGTH, MAX_TAGS_PER_TASK
from domain.tasks import MAX_DESCRIPTION_LENGTH, MAX_TITLE_LENGTH, Priority, Task
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
    timezone: str
    """The user's IANA time zone: the zone of dues written without one."""

    @classmethod
    def of(cls, user: User) -> "UserResponse":
        return cls(id=user.id, email=user.email, created_at=user.created_at, timezone=user.timezone)


class AccountResponse(Struct, kw_only=True, frozen=True):
    """The caller's account: a UserResponse, and how they sign in."""

    id: UUID
    email: str
    created_at: datetime
    timezone: str
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


PriorityName = Literal["none", "low", "medium", "high"]
_Priority = Annotated[
    PriorityName, Meta(description="none < low < medium < high (the order of sort=priority).")
]
_Timezone = Annotated[
    str,
    _documented(
        "An IANA time zone name as the tzdata package ships it (zones and links), spelled "
        "with its case.",
        example="Europe/Lisbon",
        format="time-zone",
        minLength=1,
        maxLength=64,
    ),
]
_TAG_NAME_SCHEMA = {
    "type": "string",
    "format": "tag-name",
    "minLength": 1,
    "maxLength": MAX_TAG_LENGTH,
    "pattern": r"^[^\x00-\x1f\x7f-\x9f/,]*[^\s\x00-\x1f\x7f-\x9f/,][^\x00-\x1f\x7f-\x9f/,]*$",
}
TAG_NAME_SCHEMA = _TAG_NAME_SCHEMA
"""A tag name's JSON Schema, for the parameters that take one."""
_Tags = Annotated[
    list[str],
    _documented(
        f"At most {MAX_TAGS_PER_TASK} after duplicates (by case) collapse; each trimmed, 1 to "
        f"{MAX_TAG_LENGTH} characters, no control character, '/' or ','. The user's first "
        "spelling of a tag is kept.",
        example=["work", "home"],
        maxItems=MAX_TAGS_PER_TASK,
        items=_TAG_NAME_SCHEMA,
    ),
]


class DueRequest(Struct, kw_only=True):
    """Due on a day (all day), or at a time of it; in `timezone`, else the user's."""

    date: Annotated[
        str,
        _documented(
            "YYYY-MM-DD, 1900-01-01 to 9999-12-31, a date of the calendar.",
            format="due-date",
            pattern=r"^\d{4}-\d{2}-\d{2}$",
        ),
    ]
    time: Annotated[
        str | None,
        _documented(
            "HH:MM or HH:MM:SS, 00:00 to 23:59:59; null: all day.",
            example="17:30",
            format="due-time",
            pattern=r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$",
        ),
    ] = None
    timezone: _Timezone | None = None


class DueResponse(Struct, kw_only=True, frozen=True):
    date: date
    # A wall time has no offset, which JSON Schema's format "time" demands: a pattern says it.
    time: Annotated[str, Meta(pattern=r"^([01]\d|2[0-3]):[0-5]\d:[0-5]\d$")] | None
    timezone: str
    at: datetime | None
    """The instant of a timed due (UTC); null all day."""

    @classmethod
    def of(cls, due: Due) -> "DueResponse":
        wall = None if due.time is None else due.time.isoformat(timespec="seconds")
        return cls(date=due.date, time=wall, timezone=due.timezone, at=due.at)


class NewTask(Struct, kw_only=True):
    title: _Title
    description: _Description = None
    completed: bool = False
    priority: _Priority = "none"
    due: DueRequest | None = None
    tags: _Tags = msgspec.field(default_factory=list)


class TaskChangesRequest(Struct, kw_only=True):
    """Absent fields stay as they are; "description": null clears the description, "due":
    null the due; "tags" replaces the whole list."""

    title: _Title | UnsetType = UNSET
    description: _Description | UnsetType = UNSET
    completed: bool | UnsetType = UNSET
    priority: _Priority | UnsetType = UNSET
    due: DueRequest | UnsetType | None = UNSET
    tags: _Tags | UnsetType = UNSET


def written_due(due: DueRequest) -> WrittenDue:
    return WrittenDue(date=due.date, time=due.time, timezone=due.timezone)


class TaskResponse(Struct, kw_only=True, frozen=True):
    id: UUID
    title: str
    description: str | None
    completed: bool
    user_id: UUID
    created_at: datetime
    updated_at: datetime
    priority: PriorityName
    due: DueResponse | None
    tags: list[str]
    """Sorted case-insensitively."""
    completed_at: datetime | None
    """When the task was last completed; null while it is open."""

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
            priority=task.priority.value,
            due=None if task.due is None else DueResponse.of(task.due),
            tags=list(task.tags),
            completed_at=task.completed_at,
        )


class TagResponse(Struct, kw_only=True, frozen=True):
    name: str
    open: int
    """How many of the caller's open tasks carry it."""
    total: int
    """How many of the caller's tasks carry it."""

    @classmethod
    def of(cls, usage: TagUsage) -> "TagResponse":
        return cls(name=usage.name, open=usage.open, total=usage.total)


class TagListResponse(Struct, kw_only=True, frozen=True):
    tags: list[TagResponse]


class TagRename(Struct, kw_only=True):
    name: Annotated[
        str,
        _documented(
            f"The new name: trimmed, 1 to {MAX_TAG_LENGTH} characters, no control character, "
            "'/' or ','; a change of case only is allowed.",
            example="Work",
            **{k: v for k, v in _TAG_NAME_SCHEMA.items() if k != "type"},
        ),
    ]


class TimezoneChange(Struct, kw_only=True):
    timezone: _Timezone


class TaskListResponse(Struct, kw_only=True, frozen=True):
    tasks: list[TaskResponse]
    total: int
    limit: int
    offset: int
    next_cursor: str | None
    """Opaque; pass it as `cursor` for the next page. Null on the last page."""


_NOT_OURS = "Not a cursor this API gave out"


def encode_cursor(query: TaskQuery, position: TaskPosition) -> str:
    """The page's end, with a digest of the list's sort and filters, opaque to clients."""
    key = position.key
    written = key.isoformat() if isinstance(key, datetime) else key
    raw = msgspec.json.encode(
        [query.digest(), position.created_at.isoformat(), str(position.id), written]
    )
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, query: TaskQuery) -> TaskPosition:
    """The position a cursor names, for the list of the query it came from (422 on `cursor`
    for any other sort or filters)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        digest, created_at, task_id, written = msgspec.json.decode(
            raw, type=tuple[str, str, str, str | int | None]
        )
        position = TaskPosition(
            datetime.fromisoformat(created_at), UUID(task_id), _key(query.sort, written)
        )
    except (ValueError, msgspec.DecodeError):  # binascii.Error, UnicodeDecodeError: ValueErrors
        raise ValidationFailed.single("cursor", _NOT_OURS) from None
    if position.created_at.utcoffset() is None:
        raise ValidationFailed.single("cursor", _NOT_OURS)
    if digest != query.digest():
        raise ValidationFailed.single(
            "cursor", "Belongs to a list of another sort or other filters"
        )
    return position


def _key(sort: TaskSort, written: str | int | None) -> object:
    """The sort key as its sort keeps it; ValueError for any other."""
    match sort.key, written:
        case "created_at", None:
            return None
        case "updated_at", str():
            return _aware(written)
        case "due", str():
            return _aware(written)
        case "due", None:
            return None
        case "priority", int() if 0 <= written < len(Priority):
            return written
        case "title", str():
            return written
    raise ValueError("not a key of this sort")


def _aware(written: str) -> datetime:
    moment = datetime.fromisoformat(written)
    if moment.utcoffset() is None:
        raise ValueError("not an instant")
    return moment


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
