"""The HTTP routes: thin translations between JSON and the use cases."""

import hmac
import re
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.datastructures import ResponseHeader
from litestar.di import NamedDependency, Provide
from litestar.openapi import ResponseSpec
from litestar.params import JSONBody, Parameter
from litestar.status_codes import HTTP_200_OK

from application.accounts import AccountService
from application.errors import InvalidToken, NotAuthenticated
from application.tasks import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, TaskQuery, TaskService
from domain.errors import ValidationFailed
from domain.tasks import Task, TaskChanges
from domain.users import User
from entrypoints.bootstrap import Services, UseCases
from entrypoints.http.errors import StrictJsonDTO, responses
from entrypoints.http.etags import etag_of, matches_none, versions_in
from entrypoints.http.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from entrypoints.http.schemas import (
    AuthResponse,
    Credentials,
    HealthResponse,
    LivenessResponse,
    MessageResponse,
    NewTask,
    PasswordChange,
    PasswordConfirmation,
    TaskChangesRequest,
    TaskListResponse,
    TaskResponse,
    UserResponse,
    decode_cursor,
    encode_cursor,
)

MAX_AUTHORIZATION_HEADER = 8 * 1024
_IDEMPOTENCY_KEY = re.compile(r"[\x20-\x7e]{1,255}")


def bearer_token(request: Request[Any, Any, Any]) -> str | None:
    """The token of an `Authorization: Bearer` header; None when there is none to speak of."""
    header = request.headers.get("authorization")
    if not header:
        return None
    if len(header) > MAX_AUTHORIZATION_HEADER:
        raise InvalidToken()  # refused without decoding it
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def client_address(request: Request[Any, Any, Any]) -> str | None:
    """The peer's address (the proxy's, unless the server is told to trust its headers)."""
    return request.client.host if request.client else None


def _services(request: Request[Any, Any, Any]) -> Services:
    services: Services = request.app.state.services
    return services


def provide_accounts(request: Request[Any, Any, Any]) -> AccountService:
    return _services(request).accounts


async def provide_current_user(
    request: Request[Any, Any, Any], accounts: NamedDependency[AccountService]
) -> User:
    return _known(request, await accounts.authenticate(bearer_token(request)))


def _known(request: Request[Any, Any, Any], user: User) -> User:
    # The scope's state outlives the handler: the request log line names the user.
    request.scope.setdefault("state", {})["user_id"] = str(user.id)
    return user


async def provide_unit_of_work(request: Request[Any, Any, Any]) -> AsyncIterator[UseCases]:
    """The request's unit of work: one connection, one transaction, committed before the
    answer is sent (rolled back when the handler raises)."""
    async with _services(request).one_transaction() as use_cases:
        yield use_cases


async def provide_current_user_in_unit_of_work(
    request: Request[Any, Any, Any], work: NamedDependency[UseCases]
) -> User:
    return _known(request, await work.accounts.authenticate(bearer_token(request)))


_AUTHENTICATED = {"current_user": Provide(provide_current_user)}
# Task requests authenticate and do their work on one connection: one check-out of the pool
# instead of one per query. (Auth routes hash passwords, so they never hold a connection.)
_AUTHENTICATED_UNIT_OF_WORK = {
    "work": Provide(provide_unit_of_work),
    "current_user": Provide(provide_current_user_in_unit_of_work),
}
APP_DEPENDENCIES = {
    "accounts": Provide(provide_accounts, sync_to_thread=False),
}


@get(
    "/health",
    tags=["health"],
    responses={
        503: ResponseSpec(
            data_container=HealthResponse,
            description="The database is unreachable",
            generate_examples=False,
        )
    },
)
async def health(request: Request[Any, Any, Any]) -> Response[HealthResponse]:
    """200 when a query round-trips to the database, 503 when it does not."""
    if await _services(request).database_reachable():
        return Response(HealthResponse(status="healthy", database="ok"))
    return Response(
        HealthResponse(status="unhealthy", database="unreachable"),
        status_code=503,
        headers={"Retry-After": "5"},
    )


@get("/health/live", tags=["health"])
async def liveness() -> LivenessResponse:
    """200 while the process serves requests; never touches the database (for orchestrators
    that restart a process, which would not cure a database outage)."""
    return LivenessResponse(status="alive")


@get(
    "/metrics",
    tags=["health"],
    media_type=METRICS_CONTENT_TYPE,
    responses=responses(401),
    description="Prometheus text format. With METRICS_TOKEN set, needs `Authorization: Bearer "
    "<METRICS_TOKEN>`.",
)
async def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    expected = request.app.state.metrics_token
    if expected is not None:
        presented = bearer_token(request) or ""
        if not hmac.compare_digest(presented.encode(), expected.encode()):
            raise NotAuthenticated() if not presented else InvalidToken()
    exposition = request.app.state.metrics.exposition()
    return Response(exposition, media_type=METRICS_CONTENT_TYPE)


class AuthController(Controller):
    path = "/api/auth"
    tags = ["auth"]

    @post(
        "/register",
        dto=StrictJsonDTO[Credentials],
        return_dto=None,
        responses=responses(400, 409, 413, 422, 429, 503),
    )
    async def register(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[Credentials],
        accounts: NamedDependency[AccountService],
    ) -> UserResponse:
        user = await accounts.register(data.email, data.password, client_address(request))
        return UserResponse.of(user)

    @post(
        "/login",
        status_code=HTTP_200_OK,
        dto=StrictJsonDTO[Credentials],
        return_dto=None,
        responses=responses(400, 401, 413, 422, 429, 503),
    )
    async def login(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[Credentials],
        accounts: NamedDependency[AccountService],
    ) -> AuthResponse:
        session = await accounts.log_in(data.email, data.password, client_address(request))
        return AuthResponse.of(session)

    @post(
        "/logout",
        status_code=HTTP_200_OK,
        responses=responses(401, 503),
        security=[{"bearer": []}],
    )
    async def logout(
        self, request: Request[Any, Any, Any], accounts: NamedDependency[AccountService]
    ) -> MessageResponse:
        await accounts.log_out(bearer_token(request))
        return MessageResponse(message="Logged out successfully")

    @get(
        "/me",
        dependencies=_AUTHENTICATED,
        responses=responses(401, 503),
        security=[{"bearer": []}],
    )
    async def me(self, current_user: NamedDependency[User]) -> UserResponse:
        return UserResponse.of(current_user)

    @post(
        "/logout-all",
        status_code=HTTP_200_OK,
        dependencies=_AUTHENTICATED,
        responses=responses(401, 503),
        security=[{"bearer": []}],
    )
    async def logout_everywhere(
        self, current_user: NamedDependency[User], accounts: NamedDependency[AccountService]
    ) -> MessageResponse:
        """Revokes every token of the caller issued up to now, on every device."""
        await accounts.log_out_everywhere(current_user)
        return MessageResponse(message="Logged out everywhere")

    @post(
        "/password",
        status_code=HTTP_200_OK,
        dependencies=_AUTHENTICATED,
        dto=StrictJsonDTO[PasswordChange],
        return_dto=None,
        responses=responses(400, 401, 413, 422, 429, 503),
        security=[{"bearer": []}],
    )
    async def change_password(
        self,
        data: JSONBody[PasswordChange],
        current_user: NamedDependency[User],
        accounts: NamedDependency[AccountService],
    ) -> AuthResponse:
        """Changes the password and revokes every older token, this one included; the answer
        carries a fresh token."""
        session = await accounts.change_password(
            current_user, data.current_password, data.new_password
        )
        return AuthResponse.of(session)

    @delete(
        "/me",
        dependencies=_AUTHENTICATED,
        dto=StrictJsonDTO[PasswordConfirmation],
        return_dto=None,
        responses=responses(400, 401, 413, 422, 429, 503),
        security=[{"bearer": []}],
    )
    async def delete_account(
        self,
        data: JSONBody[PasswordConfirmation],
        current_user: NamedDependency[User],
        accounts: NamedDependency[AccountService],
    ) -> None:
        """Deletes the account and all its tasks, once the password confirms it."""
        await accounts.delete_account(current_user, data.password)


TaskId = Annotated[
    str, Parameter(description="The task's id (a UUID).", schema_extra={"format": "uuid"})
]


IfMatch = Annotated[
    str | None,
    Parameter(
        header="If-Match",
        description="Change only if the task is still this version (its ETag): else 412.",
    ),
]
IfNoneMatch = Annotated[
    str | None,
    Parameter(header="If-None-Match", description="304 if the task is still this version."),
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
    dependencies = _AUTHENTICATED_UNIT_OF_WORK
    security = [{"bearer": []}]

    @get("/", responses=responses(401, 422, 503))
    async def list_tasks(
        self,
        current_user: NamedDependency[User],
        work: NamedDependency[UseCases],
        limit: Annotated[
            int, Parameter(ge=1, le=MAX_PAGE_SIZE, description="Page size.")
        ] = DEFAULT_PAGE_SIZE,
        offset: Annotated[int, Parameter(ge=0, description="Tasks to skip.")] = 0,
        completed: Annotated[
            Literal["true", "false"] | None,
            Parameter(description="Only completed (true) or open (false) tasks."),
        ] = None,
        cursor: Annotated[
            str | None,
            Parameter(
                description="Keyset paging: a previous page's `next_cursor`; the page starts "
                "right after that page's last task. Not combinable with `offset`."
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
        page = await work.tasks.list(current_user.id, query)
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
        current_user: NamedDependency[User],
        work: NamedDependency[UseCases],
        idempotency_key: Annotated[
            str | None,
            Parameter(
                header="Idempotency-Key",
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
        task = await work.tasks.create(
            current_user.id,
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
        responses={**responses(401, 403, 404, 422, 503), 304: _NOT_MODIFIED},
        response_headers=[_ETAG],
    )
    async def get_task(
        self,
        task_id: TaskId,
        current_user: NamedDependency[User],
        work: NamedDependency[UseCases],
        if_none_match: IfNoneMatch = None,
    ) -> Response[TaskResponse]:
        """With `If-None-Match` naming the current ETag: 304 and no body."""
        task = await work.tasks.get(current_user.id, _task_id(task_id))
        if if_none_match is not None and matches_none(if_none_match, task):
            # A 304 has no body; the annotation documents the 200.
            return Response(None, status_code=304, headers={"ETag": etag_of(task)})  # type: ignore[arg-type]
        return _task_response(task)

    @put(
        "/{task_id:str}",
        dto=StrictJsonDTO[TaskChangesRequest],
        return_dto=None,
        responses=responses(400, 401, 403, 404, 412, 413, 422, 503),
        response_headers=[_ETAG],
    )
    async def replace_task_fields(
        self,
        task_id: TaskId,
        data: JSONBody[TaskChangesRequest],
        current_user: NamedDependency[User],
        work: NamedDependency[UseCases],
        if_match: IfMatch = None,
    ) -> Response[TaskResponse]:
        """A partial update, exactly as PATCH: absent fields are unchanged."""
        return await _update(task_id, data, current_user, work.tasks, if_match)

    @patch(
        "/{task_id:str}",
        dto=StrictJsonDTO[TaskChangesRequest],
        return_dto=None,
        responses=responses(400, 401, 403, 404, 412, 413, 422, 503),
        response_headers=[_ETAG],
    )
    async def update_task(
        self,
        task_id: TaskId,
        data: JSONBody[TaskChangesRequest],
        current_user: NamedDependency[User],
        work: NamedDependency[UseCases],
        if_match: IfMatch = None,
    ) -> Response[TaskResponse]:
        """Absent fields are unchanged; `"description": null` clears the description."""
        return await _update(task_id, data, current_user, work.tasks, if_match)

    @delete("/{task_id:str}", responses=responses(401, 403, 404, 412, 422, 503))
    async def delete_task(
        self,
        task_id: TaskId,
        current_user: NamedDependency[User],
        work: NamedDependency[UseCases],
        if_match: IfMatch = None,
    ) -> None:
        await work.tasks.delete(
            current_user.id,
            _task_id(task_id),
            expected_versions=None if if_match is None else versions_in(if_match),
        )


def _task_response(task: Task, status_code: int = 200) -> Response[TaskResponse]:
    return Response(TaskResponse.of(task), status_code=status_code, headers={"ETag": etag_of(task)})


async def _update(
    raw_task_id: str,
    data: TaskChangesRequest,
    current_user: User,
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
        current_user.id,
        _task_id(raw_task_id),
        changes,
        expected_versions=None if if_match is None else versions_in(if_match),
    )
    return _task_response(task)
