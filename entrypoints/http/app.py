"""The Litestar application factory."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import cast

from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.enums import ScopeType
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from entrypoints.bootstrap import Services, database_url, open_services
from entrypoints.http.controllers import APP_DEPENDENCIES, AuthController, TaskController, health
from entrypoints.http.errors import EXCEPTION_HANDLERS, PROBLEM_JSON
from entrypoints.http.schemas import ProblemDetails, encode_json
from entrypoints.settings import Settings, load_settings

MAX_BODY_BYTES = 1024 * 1024
AUTH_PATH_PREFIX = "/api/auth/"


def create_app(settings: Settings, *, services: Services | None = None) -> Litestar:
    """The HTTP app. Its lifespan opens the pool (starting the embedded database first when no
    DATABASE_URL is set) unless ready-made services are passed in."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        if services is not None:
            app.state.services = services
            yield
            return
        with database_url(settings) as url:
            async with open_services(settings, url) as opened:
                app.state.services = opened
                # The decoy hash makes even the first login of an unknown email cost a bcrypt.
                await opened.accounts.warm_up()
                yield

    app = Litestar(
        route_handlers=[health, AuthController, TaskController],
        dependencies=APP_DEPENDENCIES,
        lifespan=[lifespan],
        exception_handlers=EXCEPTION_HANDLERS,
        request_max_body_size=MAX_BODY_BYTES,
        cors_config=CORSConfig(
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type"],
            expose_headers=["Location", "Retry-After", "WWW-Authenticate"],
            allow_credentials=False,
            max_age=600,
        ),
        openapi_config=OpenAPIConfig(
            title="todo-api",
            version="0.1.0",
            description="The backend of a multi-user todo app.",
            components=Components(
                security_schemes={
                    "bearer": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT")
                }
            ),
        ),
        debug=False,
    )
    _drop_generated_bad_request_answers(app)
    app.asgi_handler = _SecurityHeaders(_ProblemPreflights(app.asgi_handler))
    return app


class _SecurityHeaders:
    """On every response, errors and preflights included: nosniff; and no caching of anything
    the auth endpoints answer (tokens, account data)."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self._app(scope, receive, send)
            return
        extra = [(b"x-content-type-options", b"nosniff")]
        if scope["path"].startswith(AUTH_PATH_PREFIX):
            extra.append((b"cache-control", b"no-store"))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in extra}
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message["headers"] = [*kept, *extra]
            await send(message)

        await self._app(scope, receive, send_with_headers)


class _ProblemPreflights:
    """Litestar's CORS layer, outside every exception handler, refuses a preflight with a
    text/plain 400; this turns that answer into problem details like every other error."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["method"] != "OPTIONS":
            await self._app(scope, receive, send)
            return
        refused = False

        async def send_as_problem(message: Message) -> None:
            nonlocal refused
            if message["type"] == "http.response.start" and message["status"] == 400:
                refused = (b"content-type", b"text/plain; charset=utf-8") in message["headers"]
                if refused:
                    return
            if refused and message["type"] == "http.response.body":
                detail = message.get("body", b"").decode()
                body = encode_json(ProblemDetails(status=400, title="Bad Request", detail=detail))
                headers = [
                    (b"content-type", PROBLEM_JSON.encode()),
                    (b"content-length", str(len(body)).encode()),
                ]
                start = {"type": "http.response.start", "status": 400, "headers": headers}
                await send(cast(Message, start))
                await send(cast(Message, {"type": "http.response.body", "body": body}))
                return
            await send(message)

        await self._app(scope, receive, send_as_problem)


def _drop_generated_bad_request_answers(app: Litestar) -> None:
    """Litestar documents a 400 of its own for every operation with parameters, but this API
    answers parameter errors with a 422 (each handler lists what it really answers)."""
    for path_item in (app.openapi_schema.paths or {}).values():
        for method in ("get", "put", "post", "patch", "delete"):
            operation = getattr(path_item, method)
            answers = operation.responses if operation is not None else None
            bad_request = (answers or {}).get("400")
            content = getattr(bad_request, "content", None) or {}
            if answers is not None and PROBLEM_JSON not in content:
                answers.pop("400", None)


def create_app_from_environment() -> Litestar:
    """For `uvicorn --factory` and for each worker process of `todo-api serve --workers N`."""
    return create_app(load_settings())
