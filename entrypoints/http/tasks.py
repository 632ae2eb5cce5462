"""The task routes: a user's todo list."""

import re
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
from domain.errors import ValidationFailed
from domain.tasks import DEFAULT_PAGE_SIZE, MAX_OFFSET, MAX_PAGE_SIZE, Task, TaskChanges, TaskQuery
from entrypoints.http.dependencies import TASKS
from entrypoints.http.errors import StrictJsonDTO, responses
from entrypoints.http.etags import etag_of, matches_none, versions_in
from entrypoints.http.schemas import (
    NewTask,
    TaskChangesRequest,
    TaskListResponse,
    TaskResponse,
    decode_cursor,
    encode_cursor,
)

_IDEMPOTENCY_KEY = re.compile(r"[\x20-\x7e]{1,255}")

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
        cursor: Annotated[
            str | None,
            Parameter(
                description="Keyset paging: a previous page's `next_cursor`; the page starts "
                "right after that page's last task (then skips `offset` more).",
                schema_extra={
                    **_OPTIONAL_STRING,
                    "format": "task-cursor",
                    "pattern": "^[A-Za-z0-9_-]+$",
                },
            ),
        ] = None,
    ) -> TaskListResponse:
        """The caller's tasks, newest first; `total` counts all that match the filter, and
        `next_cursor` (null on the last page) fetches the next page as cheaply as the first."""
        query = TaskQuery(
            completed=None if completed is None else completed == "true",
            limit=limit,
            offset=offset,
            after=None if cursor is None else decode_cursor(cursor),
        )
        page = await tasks.list(caller, query)
        next_position = page.next_position
        return TaskListResponse(
            tasks=[TaskResponse.of(task) for task in page.tasks],
            total=page.total,
            limit=limit,
            offset=offset,
            next_cursor=None if next_position is None else encode_cursor(next_position),
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
    task = await tasks.update(
        caller,
        _task_id(raw_task_id),
        changes,
        expected_versions=None if if_match is None else versions_in(if_match),
    )
    return _task_response(task)
