"""Helpers shared by the HTTP tests: the problem-details check, accounts, tokens, shapes."""

import base64
import json
import re
import time
from datetime import datetime
from typing import Any
from uuid import UUID

import httpx
import jwt
from litestar import Litestar
from litestar.testing import TestClient

from entrypoints.settings import Settings

SECRET = "s" * 40
FRONTEND_ORIGIN = "http://localhost:3000"
PASSWORD = "correct horse battery staple"
PROBLEM_JSON = "application/problem+json"
METRICS_TOKEN = "m" * 24
"""The operator's token of the apps that serve /metrics (without one there is no /metrics)."""
TASK_KEYS = {
    "id",
    "title",
    "description",
    "completed",
    "user_id",
    "created_at",
    "updated_at",
    "priority",
    "due",
    "tags",
    "completed_at",
}
USER_KEYS = {"id", "email", "created_at", "timezone"}
_UTC_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")

Client = TestClient[Litestar]


def make_settings(database_url: str, **overrides: Any) -> Settings:
    """Settings for a test app: fast bcrypt, a small pool, the frontend's origin, no
    background jobs."""
    values: dict[str, Any] = {
        "auth_secret": SECRET,
        "database_url": database_url,
        "bcrypt_rounds": 4,
        "cors_origins": (FRONTEND_ORIGIN,),
        "pool_min_size": 1,
        "pool_max_size": 4,
        # Tests from one client address far exceed a person's pace; throttling has its own tests.
        "auth_rate_per_minute": 0,
        # No purges behind the tests' backs: background work has tests of its own.
        "housekeeping_interval_seconds": 0,
    }
    values.update(overrides)
    return Settings(**values)


def assert_problem(
    response: httpx.Response, status: int, detail: str | None = None
) -> dict[str, Any]:
    """The response is RFC 9457 problem details for `status` (and `detail`, when given),
    with the headers the contract requires of 401, 503 and 422 answers. Returns the body."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].split(";")[0].strip() == PROBLEM_JSON
    body = response.json()
    assert isinstance(body, dict), body
    assert type(body["status"]) is int
    assert body["status"] == status
    assert isinstance(body["detail"], str)
    assert body["detail"]
    if detail is not None:
        assert body["detail"] == detail, body
    if status == 401:
        assert response.headers.get("www-authenticate") == "Bearer"
    if status == 503:
        assert response.headers.get("retry-after", "").isdigit()
    if status == 422:
        errors = body["errors"]
        assert isinstance(errors, list)
        assert errors
        for error in errors:
            assert set(error) == {"field", "message"}, error
            assert isinstance(error["field"], str)
            assert isinstance(error["message"], str)
            assert error["message"]
    return body


# Headers that differ on every request by design and say nothing about the request itself.
PER_REQUEST_HEADERS = {"x-request-id"}


def comparable_headers(
    response: httpx.Response, *, ignore: frozenset[str] = frozenset()
) -> dict[str, str]:
    """The response's headers, without those that differ on every request (and `ignore`)."""
    skipped = PER_REQUEST_HEADERS | {name.lower() for name in ignore}
    return {name: value for name, value in response.headers.items() if name not in skipped}


def error_fields(response: httpx.Response) -> set[str]:
    """The fields a 422 problem names."""
    body = assert_problem(response, 422)
    return {error["field"] for error in body["errors"]}


def assert_uuid(value: object) -> UUID:
    assert isinstance(value, str)
    parsed = UUID(value)
    assert str(parsed) == value
    return parsed


def parse_timestamp(value: object) -> datetime:
    """An ISO-8601 UTC timestamp with the `Z` suffix."""
    assert isinstance(value, str)
    assert _UTC_TIMESTAMP.match(value), value
    return datetime.fromisoformat(value)


def assert_user(body: object, email: str | None = None) -> dict[str, Any]:
    assert isinstance(body, dict)
    assert set(body) == USER_KEYS
    assert_uuid(body["id"])
    parse_timestamp(body["created_at"])
    if email is not None:
        assert body["email"] == email
    return body


def assert_me(body: object, email: str | None = None, sign_in: str = "password") -> dict[str, Any]:
    """GET /api/auth/me's answer: a UserResponse plus how the account signs in."""
    assert isinstance(body, dict)
    assert body.get("sign_in") == sign_in, body
    return {"sign_in": sign_in, **assert_user(_without(body, "sign_in"), email)}


def _without(body: dict[str, Any], key: str) -> dict[str, Any]:
    return {name: value for name, value in body.items() if name != key}


def assert_task(body: object) -> dict[str, Any]:
    assert isinstance(body, dict)
    assert set(body) == TASK_KEYS
    assert_uuid(body["id"])
    assert_uuid(body["user_id"])
    assert isinstance(body["title"], str)
    assert body["description"] is None or isinstance(body["description"], str)
    assert isinstance(body["completed"], bool)
    assert parse_timestamp(body["created_at"]) <= parse_timestamp(body["updated_at"])
    assert body["priority"] in {"none", "low", "medium", "high"}
    assert isinstance(body["tags"], list)
    assert (body["completed_at"] is None) == (not body["completed"])
    if body["due"] is not None:
        assert set(body["due"]) == {"date", "time", "timezone", "at"}
        assert (body["due"]["at"] is None) == (body["due"]["time"] is None)
    return body


def register(client: Client, email: str, password: str = PASSWORD) -> dict[str, Any]:
    response = client.post("/api/auth/register", json={"email": email, "password": password})
    assert response.status_code == 201, response.text
    return assert_user(response.json())


def log_in(client: Client, email: str, password: str = PASSWORD) -> str:
    response = client.post("/api/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    assert isinstance(token, str)
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def mint(
    claims: dict[str, Any],
    *,
    secret: str = SECRET,
    algorithm: str = "HS256",
) -> str:
    """A token made outside the service, as the web frontend would make one."""
    return jwt.encode(claims, secret, algorithm=algorithm)


def standard_claims(user_id: str, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {"sub": user_id, "iat": now, "exp": now + 3600}
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not None}


def _segment(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def unsigned_token(header: dict[str, Any], claims: dict[str, Any], signature: str = "") -> str:
    """A token assembled by hand, for algorithms PyJWT will not sign with."""
    return f"{_segment(header)}.{_segment(claims)}.{signature}"


class Account:
    """A registered, logged-in user."""

    def __init__(self, client: Client, email: str, password: str = PASSWORD) -> None:
        self.email = email
        self.password = password
        self.user = register(client, email, password)
        self.id: str = self.user["id"]
        self.token = log_in(client, email, password)
        self.headers = bearer(self.token)


def create_task(client: Client, account: Account, **fields: Any) -> dict[str, Any]:
    body = {"title": "A task", **fields}
    response = client.post("/api/tasks", json=body, headers=account.headers)
    assert response.status_code == 201, response.text
    return assert_task(response.json())
