"""ASGI layers around the Litestar app: what every answer gets, whatever produced it."""

import logging
import re
import time
from collections.abc import Mapping
from secrets import token_hex
from typing import Any, cast

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from entrypoints.http.errors import PROBLEM_JSON
from entrypoints.http.metrics import Metrics
from entrypoints.http.schemas import ProblemDetails, encode_json
from entrypoints.logs import request_id

log = logging.getLogger("todo_api.requests")

_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")


class ObservedRequests:
    """Gives each request an id (a sane incoming X-Request-ID, or a new one), echoes it, puts
    it on every log record of the request, and logs and counts the request once answered.

    Every answer, errors and preflights included, also gets the security headers: nosniff,
    and no caching of anything the auth endpoints answer (tokens, account data). They are set
    here, in the one layer every request passes anyway, rather than in a layer of their own."""

    def __init__(self, app: ASGIApp, metrics: Metrics, *, auth_path_prefix: str) -> None:
        self._app = app
        self._metrics = metrics
        self._auth_path_prefix = auth_path_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self._app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        # 32 hex digits, like a UUID's, without building one.
        rid = incoming if incoming and _SANE_REQUEST_ID.fullmatch(incoming) else token_hex(16)
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500  # what the client sees if the app fails before answering
        security = _AUTH_HEADERS if scope["path"].startswith(self._auth_path_prefix) else _HEADERS
        added = [(b"x-request-id", rid.encode()), *security]
        replaced = _REPLACED[security]

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *(h for h in message.get("headers", ()) if h[0].lower() not in replaced),
                    *added,
                ]
            await send(message)

        try:
            await self._app(scope, receive, send_observed)
        finally:
            elapsed = time.perf_counter() - started
            route = cast(dict[str, Any], scope).get("path_template") or "unmatched"
            self._metrics.observe(scope["method"], route, status, elapsed)
            if log.isEnabledFor(logging.INFO):
                # The record is made here rather than by log.info(), which would also look up
                # the calling frame on every request, for a source location no line shows.
                record = log.makeRecord(
                    log.name,
                    logging.INFO,
                    __file__,
                    0,
                    "%s %s %s",
                    (scope["method"], route, status),
                    None,
                    extra={
                        "method": scope["method"],
                        "route": route,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                        "user_id": (scope.get("state") or {}).get("user_id"),
                    },
                )
                log.handle(record)
            request_id.reset(token)


_HEADERS = ((b"x-content-type-options", b"nosniff"),)
_AUTH_HEADERS = (*_HEADERS, (b"cache-control", b"no-store"))
# Whatever the app said of the headers the layer adds, the layer's value is the one sent.
_REPLACED = {
    headers: frozenset({b"x-request-id", *(name for name, _ in headers)})
    for headers in (_HEADERS, _AUTH_HEADERS)
}


class ProblemPreflights:
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


class ResourceMethods:
    """An OPTIONS answer's Allow names every method of the resource. Litestar 2 computes it
    for the handlers registered on a path first and keeps it when later handlers join the
    route, so `/api/tasks` said `OPTIONS, POST` (litestar-org/litestar#4169, fixed in v3).
    `allowed` maps each route's path template to its Allow value."""

    def __init__(self, app: ASGIApp, allowed: Mapping[str, str]) -> None:
        self._app = app
        self._allowed = {template: value.encode() for template, value in allowed.items()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["method"] != "OPTIONS":
            await self._app(scope, receive, send)
            return

        async def send_with_allow(message: Message) -> None:
            if message["type"] == "http.response.start":
                # Routing has filled in the template by the time the answer starts.
                allowed = self._allowed.get(cast(dict[str, Any], scope).get("path_template", ""))
                headers = message.get("headers", [])
                if allowed is not None and any(k.lower() == b"allow" for k, _ in headers):
                    kept = [(k, v) for k, v in headers if k.lower() != b"allow"]
                    message["headers"] = [*kept, (b"allow", allowed)]
            await send(message)

        await self._app(scope, receive, send_with_allow)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None
