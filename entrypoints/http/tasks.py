"""The task routes: a user's todo list."""

import re
from dataclasses import replace
from datetime import date
from typing import Annotated, Literal
from uuid import UUID

import msgspec
from litestar import Controller, Response, delete, get, patch, post, put
from litestar.datastructures import ResponseHeader
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.params import HeaderParameter, JSONBody, Parameter

from application.ports import Caller
from application.tasks import TaskService
from domain.due import parse_day
from domain.errors import ValidationFailed
from domain.queries import (
    DEFAULT_PAGE_SIZE,
    MAX_OFFSET,
    MAX_PAGE_SIZE,
    MAX_SEARCH_LENGTH,
    TaskQuery,
    TaskSort,
)
from domain.tasks import Priority, Task, TaskChanges
from entrypoints.http.dependencies import TASKS
from entrypoints.http.errors import StrictJsonDTO, responses
from entrypoints.http.etags import etag_of, matches_none, versions_in
from entrypoints.http.schemas import (
    TAG_NAME_SCHEMA,
    NewTask,
    PriorityName,
    TagListResponse,
    TagRename,
    TagResponse,
    TaskChangesRequest,
    TaskListResponse,
    TaskResponse,
    decode_cursor,
    encode_cursor,
    written_due,
)

_IDEMPOTENCY_KEY = re.compile(r"[\x20-\x7e]{1,255}")
SortName = Literal[
    "-created_at",
    "created_at",
    "updated_at",
    "-updated_at",
    "due",
    "-due",
    "priority",
    "-priority",
    "title",
    "-title",
]

TaskId = Annotated[
    str, Parameter(description="The task's id (a UUID).", schema_extra={"format": "uuid"})
]


# Optional headers are documented as plain strings: "null" is no header value.
_OPTIONAL_STRING = {"oneOf": None, "type": "string"}
IfMatch = Annotated[
    str | None,
    HeaderParameter(
        name="If-Match",
        description="Change only if the task is still this version (its ETag): else 412.",
        schema_extra=_OPTIONAL_STRING,
    ),
]
IfNoneMatch = Annotated[
    str | None,
    HeaderParameter(
        name="If-None-Match",
        description="304 if the task is still this version.",
        schema_extra=_OPTIONAL_STRING,
    ),
]
_ETAG = ResponseHeader(
    name="ETag",
    description="The task's version, for If-Match and If-None-Match.",
    documentation_only=True,
)
_NOT_MODIFIED = ResponseSpec(
    data_container=None, description="The task is still the version named in If-None-Match"
)


def _task_id(raw: str) -> UUID:
    try:
        return UUID(raw)
    except ValueError:
        raise ValidationFailed.single("task_id", "Must be a UUID") from None


class TaskController(Controller):
    path = "/api/tasks"
    tags = ["tasks"]
    dependencies = TASKS
    security = [{"bearer": []}]

    @get("/", responses=responses(401, 409, 422, 503))
    async def list_tasks(
        self,
        caller: NamedDependency[Caller],
        tasks: NamedDependency[TaskService],
        limit: Annotated[
            int, Parameter(ge=1, le=MAX_PAGE_SIZE, description="Page size.")
        ] = DEFAULT_PAGE_SIZE,
        offset: Annotated[int, Parameter(ge=0, le=MAX_OFFSET, description="Tasks to skip.")] = 0,
        completed: Annotated[
            Literal["true", "false"] | None,
            Parameter(description="Only completed (true) or open (false) tasks."),
        ] = None,
        priority: Annotated[
            list[PriorityName] | None,
            Parameter(description="Only tasks of any of these priorities (repeatable)."),
        ] = None,
        tag: Annotated[
            list[str] | None,
            Parameter(
                description="Only tasks carrying every one of these tags (repeatable; "
                "case-insensitive; an unknown tag matches nothing, a name no tag can have is "
                "422).",
                schema_extra={"items": TAG_NAME_SCHEMA},
            ),
        ] = None,
        q: Annotated[
            str | None,
            Parameter(
                description="Only tasks whose title or description contains every "
                "whitespace-separated word, as a substring, case-insensitively; 1 to "
                f"{MAX_SEARCH_LENGTH} characters after trimming.",
                schema_extra={**_OPTIONAL_STRING, "format": "search-words"},
            ),
        ] = None,
        due_after: Annotated[
            str | None,
            Parameter(
                description="Only tasks due on or after this date (YYYY-MM-DD), by their "
                "due's own date.",
                schema_extra={**_OPTIONAL_STRING, "format": "due-date"},
            ),
        ] = None,
        due_before: Annotated[
            str | None,
            Parameter(
                description="Only tasks due on or before this date (YYYY-MM-DD).",
                schema_extra={**_OPTIONAL_STRING, "format": "due-date"},
            ),
        ] = None,
        has_due: Annotated[
            Literal["true", "false"] | None,
            Parameter(description="Only tasks with a due (true) or without one (false)."),
        ] = None,
        overdue: Annotated[
            Literal["true", "false"] | None,
            Parameter(
                description="Only overdue tasks (true: open, and their due has passed) or "
                "only the others (false)."
            ),
        ] = None,
        sort: Annotated[
            SortName,
            Parameter(
                description="The order; a leading - is descending. priority: none < low < "
                "medium < high; due: by the moment each task is due, tasks without one last; "
                "title: case-insensitive. Ties: newest first."
            ),
        ] = "-created_at",
        cursor: Annotated[
            str | None,
            Parameter(
                description="Keyset paging: a previous page's `next_cursor`, with the same "
                "sort and filters; the page starts right after that page's last task (then "
                "skips `offset` more).",
                schema_extra={
                    **_OPTIONAL_STRING,
                    "format": "task-cursor",
                    "pattern": "^[A-Za-z0-9_-]+$",
                },
            ),
        ] = None,
    ) -> TaskListResponse:
        """The caller's tasks that match every filter, in the sort's order; `total` counts all
        that match, and `next_cursor` (null on the last page) fetches the next page as
        cheaply as the first."""
        query = TaskQuery(
            completed=_flag(completed),
            priorities=frozenset(Priority(p) for p in priority or ()),
            tags=tuple(tag or ()),
            search=q,
            due_after=_date_parameter("due_after", due_after),
            due_before=_date_parameter("due_before", due_before),
            has_due=_flag(has_due),
            overdue=_flag(overdue),
            sort=TaskSort(sort),
            limit=limit,
            offset=offset,
        )
        if cursor is not None:
            query = replace(query, after=decode_cursor(cursor, query))
        page = await tasks.list(caller, query)
        next_position = page.next_position(query.sort)
        return TaskListResponse(
            tasks=[TaskResponse.of(task) for task in page.tasks],
            total=page.total,
            limit=limit,
            offset=offset,
            next_cursor=None if next_position is None else encode_cursor(query, next_position),
        )

    @post(
        "/",
        dto=StrictJsonDTO[NewTask],
        return_dto=None,
        responses=responses(400, 401, 409, 413, 422, 503),
        response_headers=[_ETAG],
    )
    async def create_task(
        self,
        data: JSONBody[NewTask],
        caller: NamedDependency[Caller],
        tasks: NamedDependency[TaskService],
        idempotency_key: Annotated[
            str | None,
            HeaderParameter(
                name="Idempotency-Key",
                schema_extra={
                    **_OPTIONAL_STRING,
                    "minLength": 1,
                    "maxLength": 255,
                    "pattern": "^[\\x20-\\x7e]+$",
                    "format": "idempotency-key",
                },
                description="Retries with the same key and body within 24 hours get the "
                "first answer and create nothing; the same key with another body is a 422. "
                "1 to 255 printable ASCII characters.",
            ),
        ] = None,
    ) -> Response[TaskResponse]:
        if idempotency_key is not None and not _IDEMPOTENCY_KEY.fullmatch(idempotency_key):
            raise ValidationFailed.single(
                "Idempotency-Key", "Must be 1 to 255 printable ASCII characters"
            )
        task = await tasks.create(
            caller,
            title=data.title,
            description=data.description,
            completed=data.completed,
            priority=Priority(data.priority),
            due=None if data.due is None else written_due(data.due),
            tags=data.tags,
            idempotency_key=idempotency_key,
        )
        response = _task_response(task, status_code=201)
        response.headers["Location"] = f"/api/tasks/{task.id}"
        return response

    @get(
        "/{task_id:str}",
        responses={**responses(401, 403, 404, 409, 422, 503), 304: _NOT_MODIFIED},
        response_headers=[_ETAG],
    )
    async def get_task(
        self,
        task_id: TaskId,
        caller: NamedDependency[Caller],
        tasks: NamedDependency[TaskService],
        if_none_match: IfNoneMatch = None,
    ) -> Response[TaskResponse]:
        """With `If-None-Match` naming the current ETag: 304 and no body."""
        task = await tasks.get(caller, _task_id(task_id))
        if if_none_match is not None and matches_none(if_none_match, task):
            # A 304 has no body; the annotation documents the 200.
            return Response(None, status_code=304, headers={"ETag": etag_of(task)})  # type: ignore[arg-type]
        return _task_response(task)

    @put(
        "/{task_id:str}",
        dto=StrictJsonDTO[TaskChangesRequest],
        return_dto=None,
        responses=responses(400, 401, 403, 404, 409, 412, 413, 422, 503),
        response_headers=[_ETAG],
    )
    async def replace_task_fields(
        self,
        task_id: TaskId,
        data: JSONBody[TaskChangesRequest],
        caller: NamedDependency[Caller],
        tasks: NamedDependency[TaskService],
        if_match: IfMatch = None,
    ) -> Response[TaskResponse]:
        """A partial update, exactly as PATCH: absent fields are unchanged."""
        return await _update(task_id, data, caller, tasks, if_match)

    @patch(
        "/{task_id:str}",
        dto=StrictJsonDTO[TaskChangesRequest],
        return_dto=None,
        responses=responses(400, 401, 403, 404, 409, 412, 413, 422, 503),
        response_headers=[_ETAG],
    )
    async def update_task(
        self,
        task_id: TaskId,
        data: JSONBody[TaskChangesRequest],
        caller: NamedDependency[Caller],
        tasks: NamedDependency[TaskService],
        if_match: IfMatch = None,
    ) -> Response[TaskResponse]:
        """Absent fields are unchanged; `"description": null` clears the description."""
        return await _update(task_id, data, caller, tasks, if_match)

    @delete("/{task_id:str}", responses=responses(401, 403, 404, 409, 412, 422, 503))
    async def delete_task(
        self,
        task_id: TaskId,
        caller: NamedDependency[Caller],
        tasks: NamedDependency[TaskService],
        if_match: IfMatch = None,
    ) -> None:
        await tasks.delete(
            caller,
            _task_id(task_id),
            expected_versions=None if if_match is None else versions_in(if_match),
        )


def _flag(value: Literal["true", "false"] | None) -> bool | None:
    return None if value is None else value == "true"


def _date_parameter(name: str, value: str | None) -> date | None:
    return None if value is None else parse_day(value, name)


def _task_response(task: Task, status_code: int = 200) -> Response[TaskResponse]:
    return Response(TaskResponse.of(task), status_code=status_code, headers={"ETag": etag_of(task)})


async def _update(
    raw_task_id: str,
    data: TaskChangesRequest,
    caller: Caller,
    tasks: TaskService,
    if_match: str | None,
) -> Response[TaskResponse]:
    changes = TaskChanges(
        **{
            name: value
            for name in ("title", "description", "completed")
            if (value := getattr(data, name)) is not msgspec.UNSET
        }
    )
    if data.priority is not msgspec.UNSET:
        changes = replace(changes, priority=Priority(data.priority))
    if data.due is not msgspec.UNSET:
        changes = replace(changes, due=None if data.due is None else written_due(data.due))
    if data.tags is not msgspec.UNSET:
        changes = replace(changes, tags=tuple(data.tags))
    task = await tasks.update(
        caller,
        _task_id(raw_task_id),
        changes,
        expected_versions=None if if_match is None else versions_in(if_match),
    )
    return _task_response(task)


TagName = Annotated[str, Parameter(description="The tag's name, matched case-insensitively.")]


class TagController(Controller):
    path = "/api/tags"
    tags = ["tags"]
    dependencies = TASKS
    security = [{"bearer": []}]

    @get("/", responses=responses(401, 409, 503))
    async def list_tags(
        self, caller: NamedDependency[Caller], tasks: NamedDependency[TaskService]
    ) -> TagListResponse:
        """The caller's tags, sorted case-insensitively, with how many of their tasks (open
        ones, all) carry each; a tag no task carries stays until it is deleted."""
        usages = await tasks.tags(caller)
        return TagListResponse(tags=[TagResponse.of(usage) for usage in usages])

    @patch(
        "/{name:str}",
        dto=StrictJsonDTO[TagRename],
        return_dto=None,
        responses=responses(400, 401, 404, 409, 413, 422, 503),
    )
    async def rename_tag(
        self,
        name: TagName,
        data: JSONBody[TagRename],
        caller: NamedDependency[Caller],
        tasks: NamedDependency[TaskService],
    ) -> TagResponse:
        """Renames the tag on every task that carries it (their updated_at and ETag move); a
        change of case only is allowed. 409 when the new name is another of the caller's
        tags."""
        return TagResponse.of(await tasks.rename_tag(caller, name, data.name))

    @delete("/{name:str}", responses=responses(401, 404, 409, 503))
    async def delete_tag(
        self, name: TagName, caller: NamedDependency[Caller], tasks: NamedDependency[TaskService]
    ) -> None:
        """Takes the tag off every task (their updated_at and ETag move) and out of the
        vocabulary."""
        await tasks.delete_tag(caller, name)
