"""Nothing a client sends produces a 5xx, and every error is problem details (contract).

A Hypothesis property per operation of the OpenAPI document: arbitrary JSON bodies (or none),
arbitrary query strings (well-formed pairs, with the API's own parameter names among the random
ones, and raw percent-encoded text), the path's task id being a task of the caller, a random
UUID or garbage, sent with the owner's token, with none, or with a made-up Authorization header.

The owner logs in afresh for every authenticated example, so a generated logout, logout-all or
wrong-password confirmation never outlives its example, and the successful login resets the
owner's failure count: the account cannot lock. Login attempts with generated bodies name
generated emails, never the owner's.
"""

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from entrypoints.http.app import create_app
from tests.fuzz.support import OPENAPI_PATH, OPERATIONS, ids, operations
from tests.http.support import PROBLEM_JSON, Client, bearer, make_settings

OWNER_EMAIL = "never-5xx-owner@example.com"
OWNER_PASSWORD = "plum-orbit-cascade-47"

PROPERTY_SETTINGS = settings(
    max_examples=60,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Text that can travel in a URL (lone surrogates cannot be UTF-8 encoded at all).
URL_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)

# Any text, with more than its share of what breaks storage and parsers: NUL, lone surrogates
# (valid JSON as \\ud800 escapes, not encodable as UTF-8), a direction override, a BOM.
TEXT = st.lists(
    st.sampled_from(["\x00", "\ud800", "\udfff", "\u202e", "\ufeff"]) | st.characters(),
    max_size=24,
).map("".join)
# Field names the API reads, among arbitrary ones, so that bodies reach its validation.
FIELD_NAMES = (
    st.sampled_from(
        [
            "title",
            "description",
            "completed",
            "email",
            "password",
            "current_password",
            "new_password",
            "id",
            "user_id",
            "created_at",
        ]
    )
    | TEXT
)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(FIELD_NAMES, children, max_size=4)
    ),
    max_leaves=12,
)
# Bodies of the right shape with odd values go past the type checks, into the use cases and
# the database.
SHAPED = st.fixed_dictionaries(
    {},
    optional={
        "title": TEXT,
        "description": st.none() | TEXT,
        "completed": st.booleans(),
        "email": st.emails() | TEXT,
        "password": TEXT,
        "current_password": TEXT,
        "new_password": TEXT,
        "id": st.uuids().map(str),
    },
)
NO_BODY = object()
BODIES = st.just(NO_BODY) | JSON_VALUES | SHAPED

QUERY_NAMES = st.sampled_from(["limit", "offset", "completed", "cursor"]) | URL_TEXT
QUERY_VALUES = (
    st.integers().map(str)
    | st.sampled_from(["", "true", "false", "null", "-0", "1e3", "0x10", " 1"])
    | URL_TEXT
)
QUERIES = st.lists(st.tuples(QUERY_NAMES, QUERY_VALUES), max_size=4).map(urlencode) | URL_TEXT.map(
    lambda text: quote(text, safe="=&;+%")
)

OWN_TASK = "own task"
TASK_IDS = (
    st.just(OWN_TASK)
    | st.uuids().map(str)
    | URL_TEXT.filter(bool).map(lambda text: quote(text, safe=""))
)
OWNER = "owner"
ANONYMOUS = "anonymous"
HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)
# The owner most of the time (the property is mostly about what lies behind authentication),
# otherwise no Authorization header or a made-up one, bearer or not.
CREDENTIALS = (
    st.sampled_from([OWNER, OWNER, OWNER, ANONYMOUS])
    | HEADER_TEXT.map(lambda token: f"Bearer {token}")
    | HEADER_TEXT
)


@pytest.fixture(scope="module")
def module_client(database_url: str) -> Iterator[Client]:
    app = create_app(make_settings(database_url))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def client(module_client: Client, clean_database: str) -> Client:
    """The module's app over an emptied database, with the owner registered."""
    response = module_client.post(
        "/api/auth/register", json={"email": OWNER_EMAIL, "password": OWNER_PASSWORD}
    )
    assert response.status_code == 201, response.text
    return module_client


def _owner_headers(client: Client) -> dict[str, str]:
    response = client.post(
        "/api/auth/login", json={"email": OWNER_EMAIL, "password": OWNER_PASSWORD}
    )
    assert response.status_code == 200, response.text
    return bearer(response.json()["access_token"])


def _own_task_id(client: Client) -> str:
    response = client.post("/api/tasks", json={"title": "Fuzzed"}, headers=_owner_headers(client))
    assert response.status_code == 201, response.text
    task_id = response.json()["id"]
    assert isinstance(task_id, str)
    return task_id


def assert_never_5xx(response: httpx.Response, request: str) -> None:
    """Below 500; an error is RFC 9457 problem details carrying its own status and a detail,
    with what the contract adds for 401 (WWW-Authenticate), 422 (errors) and 503
    (Retry-After)."""
    status = response.status_code
    assert status < 500, (request, status, response.text)
    if status < 400:
        return
    media_type = response.headers.get("content-type", "").split(";")[0].strip()
    assert media_type == PROBLEM_JSON, (request, status, response.headers, response.text)
    body: Any = response.json()
    assert isinstance(body, dict), (request, body)
    assert type(body.get("status")) is int, (request, body)
    assert body["status"] == status, (request, body)
    assert isinstance(body.get("detail"), str), (request, body)
    if status == 401:
        assert response.headers.get("www-authenticate") == "Bearer", (request, response.headers)
    if status == 422:
        assert isinstance(body.get("errors"), list), (request, body)
        assert body["errors"], (request, body)
    if status in (429, 503):
        assert response.headers.get("retry-after", "").isdigit(), (request, response.headers)


def test_the_served_document_is_the_fuzzed_one(client: Client) -> None:
    response = client.get(OPENAPI_PATH)
    assert response.status_code == 200
    assert operations(response.json()) == OPERATIONS
    assert len(OPERATIONS) >= 14


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=ids(OPERATIONS))
def test_never_5xx(client: Client, method: str, path: str) -> None:
    answered: set[int] = set()

    @PROPERTY_SETTINGS
    @given(body=BODIES, query=QUERIES, task_id=TASK_IDS, credentials=CREDENTIALS)
    def send(body: object, query: str, task_id: str, credentials: str) -> None:
        headers: dict[str, str] = {}
        if credentials == OWNER:
            headers = _owner_headers(client)
        elif credentials != ANONYMOUS:
            headers = {"Authorization": credentials}
        if "{task_id}" in path:
            concrete = _own_task_id(client) if task_id == OWN_TASK else task_id
            url = path.replace("{task_id}", concrete)
        else:
            url = path
        if query:
            url = f"{url}?{query}"
        content = None
        if body is not NO_BODY:
            content = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        response = client.request(method, url, content=content, headers=headers)
        request = f"{method} {url} {credentials} body={content!r}"
        assert_never_5xx(response, request)
        answered.add(response.status_code)

    send()
    # The property met the API itself, not only its authentication.
    assert answered - {401}, answered
