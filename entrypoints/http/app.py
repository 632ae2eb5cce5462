"""The Litestar application factory."""

import ctypes
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.routes import HTTPRoute

from entrypoints.background import background_work
from entrypoints.bootstrap import Services, database_url, open_services
from entrypoints.http.auth import AuthController
from entrypoints.http.dependencies import APP_DEPENDENCIES
from entrypoints.http.edge import (
    ObservedRequests,
    ProblemPreflights,
    ResourceMethods,
)
from entrypoints.http.errors import EXCEPTION_HANDLERS, PROBLEM_JSON
from entrypoints.http.health import health, liveness
from entrypoints.http.health import metrics as metrics_endpoint
from entrypoints.http.metrics import Metrics
from entrypoints.http.tasks import TagController, TaskController
from entrypoints.logs import configure_logging
from entrypoints.settings import Settings, load_settings
from entrypoints.web.site import web_app_router

MAX_BODY_BYTES = 1024 * 1024
AUTH_PATH_PREFIX = "/api/auth/"


def create_app(settings: Settings, *, services: Services | None = None) -> Litestar:
    """The HTTP app. Its lifespan opens the pool (starting the embedded database first when no
    DATABASE_URL is set) and runs the background jobs over it, unless ready-made services are
    passed in."""

    metrics = Metrics(lambda: getattr(app.state, "services", None))
    # Without METRICS_TOKEN there is no /metrics at all, not even in the OpenAPI document: a
    # public server tells no stranger its routes and traffic, nor that they could be asked for.
    metrics_route = [metrics_endpoint] if settings.metrics_token is not None else []

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
                async with background_work(opened, settings):  # stopped before the pool closes
                    yield

    app = Litestar(
        route_handlers=[
            health,
            liveness,
            *metrics_route,
            AuthController,
            TaskController,
            TagController,
            web_app_router(),
        ],
        dependencies=APP_DEPENDENCIES,
        lifespan=[lifespan],
        exception_handlers=EXCEPTION_HANDLERS,
        request_max_body_size=MAX_BODY_BYTES,
        cors_config=CORSConfig(
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            # Every header the API reads or sends that a frontend on another origin needs:
            # conditional writes (If-Match, ETag), safe retries (Idempotency-Key), request ids.
            allow_headers=[
                "Authorization",
                "Content-Type",
                "If-Match",
                "If-None-Match",
                "Idempotency-Key",
                "X-Request-ID",
            ],
            expose_headers=["ETag", "Location", "Retry-After", "WWW-Authenticate", "X-Request-ID"],
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
        logging_config=None,  # logging is configured once, by entrypoints.logs
    )
    _drop_generated_bad_request_answers(app)
    app.state.metrics = metrics
    app.state.metrics_token = settings.metrics_token
    # Outermost first: every answer, even one refused before routing, is logged, counted,
    # carries its request id and the security headers.
    app.asgi_handler = ObservedRequests(
        ProblemPreflights(ResourceMethods(app.asgi_handler, _allowed_methods(app))),
        metrics,
        auth_path_prefix=AUTH_PATH_PREFIX,
    )
    return app


def create_server_app(settings: Settings) -> Litestar:
    """The app of a process that serves it and does nothing else (`todo-api serve`, each of its
    workers, `uvicorn --factory`), settled once started.

    What the start made (the libraries' modules, the migrations' leftovers, the app with its
    routes, models and OpenAPI document) lives as long as the process, yet every full
    collection of the garbage collector would walk it all again, holding up every request in
    flight: tens of milliseconds at the 99th percentile under load (issue 13). It is
    collected once, then frozen: later collections look only at what was made since. And
    what the start used and freed goes back to the system: about 5 MB that glibc's
    allocator would otherwise keep for the life of the process. (Not done by create_app: a
    process that only embeds the app, such as a test session, keeps its heap to itself.)"""
    app = create_app(settings)
    app.on_startup.append(_settle)  # once the lifespan has opened the pool, warmed up
    return app


def _settle() -> None:
    gc.collect()
    gc.freeze()
    _give_back_freed_memory()


def _give_back_freed_memory() -> None:
    try:
        malloc_trim = ctypes.CDLL(None).malloc_trim  # the C library the process runs on
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to do
        return
    malloc_trim(0)


def _allowed_methods(app: Litestar) -> dict[str, str]:
    """Each route's path template and the Allow value listing every method it answers."""
    return {
        route.path_format: ", ".join(sorted(route.methods))
        for route in app.routes
        if isinstance(route, HTTPRoute)
    }


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
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    return create_server_app(settings)
