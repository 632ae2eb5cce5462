"""Every error becomes RFC 9457 problem details here, and only here: one table maps the
application's errors to statuses and details."""

import logging
import re
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
from litestar import Request, Response
from litestar.dto import MsgspecDTO
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import Reference, Schema
from litestar.types import ExceptionHandlersMap
from litestar.typing import FieldDefinition

from application.errors import (
    InvalidCredentials,
    RetryLater,
    StatementTimedOut,
    StorageUnavailable,
    TransactionConflict,
    WrongPassword,
)
from domain.errors import FieldError, ValidationFailed
from entrypoints.http.metrics import Metrics
from entrypoints.http.schemas import FieldProblem, ProblemDetails
from entrypoints.logs import request_id
from entrypoints.problems import PROBLEMS

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator

log = logging.getLogger("todo_api.http")

PROBLEM_JSON = "application/problem+json"


class MalformedJson(Exception):
    """The request body is not JSON at all (400), as opposed to JSON that breaks a rule (422)."""


def problem(
    status: int,
    detail: str,
    *,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[ProblemDetails]:
    rid = request_id.get() if status >= 500 else None
    body = ProblemDetails(
        status=status,
        title=HTTPStatus(status).phrase,
        detail=detail,
        errors=[FieldProblem(field=e.field, message=e.message) for e in errors]
        if errors is not None
        else msgspec.UNSET,
        request_id=msgspec.UNSET if rid is None else rid,
    )
    headers = dict(headers or {})
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _application_error(request: Request[Any, Any, Any], error: Exception) -> Response[Any]:
    for error_type in type(error).__mro__:
        if error_type in PROBLEMS:
            status, detail = PROBLEMS[error_type]
            break
    else:  # pragma: no cover - only types registered from PROBLEMS reach this handler
        return _unexpected(request, error)
    if isinstance(error, StorageUnavailable):
        _log_database_failure(error)
    _count(request, error)
    errors = error.errors if isinstance(error, ValidationFailed) else None
    headers = (
        {"Retry-After": str(error.retry_after_seconds)} if isinstance(error, RetryLater) else None
    )
    return problem(status, detail, errors=errors, headers=headers)


def _log_database_failure(error: StorageUnavailable) -> None:
    # A database that answers, but too slowly or with a conflict, is no outage: said apart, so
    # that an alert on "database unavailable" is not set off by a slow query or a deadlock.
    cause = error.__cause__ or error
    if isinstance(error, StatementTimedOut):
        log.warning("database statement timed out: %s", cause)
    elif isinstance(error, TransactionConflict):
        log.warning("database transaction conflicted with a concurrent one: %s", cause)
    else:
        log.warning("database unavailable: %s", cause)


def _count(request: Request[Any, Any, Any], error: Exception) -> None:
    metrics: Metrics | None = getattr(request.app.state, "metrics", None)
    if metrics is None:
        return
    if isinstance(error, InvalidCredentials | WrongPassword):
        metrics.login_failures.inc()
    elif isinstance(error, RetryLater) and not isinstance(error, StorageUnavailable):
        metrics.throttled.labels(type(error).__name__).inc()


def _http_error(request: Request[Any, Any, Any], error: HTTPException) -> Response[Any]:
    if isinstance(error, ValidationException):
        items = [item for item in (error.extra or []) if isinstance(item, dict)]
        if any(item.get("source") == "body" for item in items):
            # Litestar checks only that a body is there; the DTO decodes every non-empty one.
            return problem(400, "Request body is not valid JSON: the body is empty")
        # Litestar's own checks of path and query parameters: well-formed but breaking a rule.
        errors = [FieldError(str(item.get("key")), str(item.get("message"))) for item in items]
        return problem(422, "Validation failed", errors=errors)
    return problem(error.status_code, str(error.detail), headers=error.headers)


def _malformed_json(request: Request[Any, Any, Any], error: Exception) -> Response[Any]:
    return problem(400, f"Request body is not valid JSON: {error}")


def _unexpected(request: Request[Any, Any, Any], error: Exception) -> Response[Any]:
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=error)
    return problem(500, "Internal server error")


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    **dict.fromkeys(PROBLEMS, _application_error),
    HTTPException: _http_error,
    MalformedJson: _malformed_json,
    Exception: _unexpected,
}

_T = TypeVar("_T", bound=msgspec.Struct)
_ERROR_PATH = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_MISSING_FIELD = re.compile(r"^Object missing required field `(?P<name>[^`]+)`")


class StrictJsonDTO(MsgspecDTO[_T]):
    """Decodes request bodies strictly: `"completed": "true"` is a 422, not a silent True
    (Litestar's own decoding coerces such values)."""

    @classmethod
    def create_openapi_schema(
        cls, field_definition: FieldDefinition, handler_id: str, schema_creator: "SchemaCreator"
    ) -> Reference | Schema:
        # The body is documented from the Struct itself, with the rules its fields describe
        # (lengths, patterns), rather than from the DTO's transfer model, which drops them.
        return schema_creator.for_field_definition(FieldDefinition.from_annotation(cls.model_type))

    def decode_bytes(self, value: bytes) -> Any:
        try:
            return msgspec.json.decode(value, type=self.model_type, strict=True)
        except msgspec.ValidationError as error:
            raise ValidationFailed([_field_error(str(error))]) from None
        except msgspec.DecodeError as error:
            raise MalformedJson(str(error)) from None


def _field_error(message: str) -> FieldError:
    """msgspec's "Expected `str`, got `int` - at `$.tasks[0].title`" as a dotted field path."""
    path, text = "", message
    if match := _ERROR_PATH.search(message):
        path = match["path"].lstrip(".").replace("[", ".").replace("]", "")
        text = message[: match.start()]
    if missing := _MISSING_FIELD.match(text):
        path = f"{path}.{missing['name']}" if path else missing["name"]
    return FieldError(path or "body", text)


def responses(*statuses: int) -> dict[int, ResponseSpec]:
    """The problem-details answers an operation can give, for the OpenAPI document."""
    return {
        status: ResponseSpec(
            data_container=ProblemDetails,
            description=HTTPStatus(status).phrase,
            media_type=PROBLEM_JSON,
            generate_examples=False,
        )
        for status in statuses
    }
