"""Health, an unreachable database, unknown routes and methods, CORS, and the OpenAPI document."""

import gc
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient

from entrypoints.http.app import create_app, create_server_app
from tests.http.support import (
    FRONTEND_ORIGIN,
    PASSWORD,
    PROBLEM_JSON,
    Account,
    Client,
    assert_problem,
    bearer,
    create_task,
    make_settings,
    mint,
    standard_claims,
)

UNREACHABLE_DATABASE = "postgresql://postgres@127.0.0.1:1/x"

# --- health ---------------------------------------------------------------------------------


def test_health_is_200_when_the_database_answers(client: Client) -> None:
    response = client.get("/health")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"status": "healthy", "database": "ok"}


# --- the database cannot be reached ---------------------------------------------------------


@pytest.fixture(scope="module")
def unreachable() -> Iterator[Client]:
    """An app whose database does not answer: it must start, and answer 503."""
    settings = make_settings(UNREACHABLE_DATABASE, pool_timeout_seconds=0.5)
    with TestClient(create_app(settings)) as client:
        yield client


def test_a_serving_process_freezes_what_its_start_made_out_of_garbage_collections() -> None:
    # The app, its routes and the libraries live as long as the process: full collections
    # would walk them on every pass, pausing requests in flight (issue 13's p99).
    settings = make_settings(UNREACHABLE_DATABASE, pool_timeout_seconds=0.5)
    with TestClient(create_app(settings)):
        assert gc.get_freeze_count() == 0  # an app embedded in a process leaves its heap alone
    try:
        with TestClient(create_server_app(settings)):
            assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()  # back to the test session


def test_health_is_503_when_the_database_is_unreachable(unreachable: Client) -> None:
    response = unreachable.get("/health")

    assert response.status_code == 503
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"status": "unhealthy", "database": "unreachable"}
    assert response.headers["retry-after"].isdigit()


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/auth/register", {"email": "ada@example.com", "password": PASSWORD}),
        ("POST", "/api/auth/login", {"email": "ada@example.com", "password": PASSWORD}),
    ],
)
def test_accounts_answer_503_problem_details_when_the_database_is_unreachable(
    unreachable: Client, method: str, path: str, body: dict[str, Any]
) -> None:
    response = unreachable.request(method, path, json=body)

    assert_problem(response, 503)


def test_protected_endpoints_answer_503_when_the_database_is_unreachable(
    unreachable: Client,
) -> None:
    token = mint(standard_claims(str(uuid.uuid4())))

    assert_problem(unreachable.get("/api/tasks", headers=bearer(token)), 503)
    assert_problem(unreachable.post("/api/auth/logout", headers=bearer(token)), 503)


def test_requests_rejected_before_the_database_still_answer_without_it(
    unreachable: Client,
) -> None:
    assert_problem(unreachable.get("/api/tasks"), 401, "Not authenticated")
    bad = unreachable.post("/api/auth/register", json={"email": "x", "password": PASSWORD})
    assert_problem(bad, 422)


# --- unknown routes, wrong methods ----------------------------------------------------------


@pytest.mark.parametrize("path", ["/nope", "/api", "/api/nope", "/api/auth/nope", "/api/tasks/a/b"])
def test_an_unknown_route_is_404_problem_details(client: Client, path: str) -> None:
    assert_problem(client.get(path), 404)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", "/health"),
        ("POST", "/health"),
        ("GET", "/api/auth/register"),
        ("GET", "/api/auth/login"),
        ("PUT", "/api/auth/me"),
        ("DELETE", "/api/tasks"),
        ("POST", f"/api/tasks/{uuid.UUID(int=1)}"),
    ],
)
def test_a_wrong_method_is_405_problem_details(client: Client, method: str, path: str) -> None:
    response = client.request(method, path)

    assert_problem(response, 405)


# --- Allow: the methods of each resource -------------------------------------------------------

HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _documented_resources(document: dict[str, Any]) -> dict[str, set[str]]:
    """Every path of the OpenAPI document, as a request path, and the methods it documents."""
    return {
        path.replace("{task_id}", str(uuid.UUID(int=1))): {
            method.upper() for method in item if method.upper() in HTTP_METHODS
        }
        for path, item in document["paths"].items()
    }


def _allow(response: httpx.Response) -> set[str]:
    return {method.strip() for method in response.headers["allow"].split(",")}


def test_options_and_405_list_exactly_the_methods_the_document_lists(
    client: Client, openapi: dict[str, Any]
) -> None:
    resources = _documented_resources(openapi)
    assert {"/api/tasks", f"/api/tasks/{uuid.UUID(int=1)}", "/api/auth/me"} <= set(resources)
    for path, documented in resources.items():
        expected = documented | {"OPTIONS"}

        options = client.options(path)
        assert options.status_code == 204, (path, options.text)
        assert _allow(options) == expected, path

        unsupported = next(m for m in HTTP_METHODS if m not in documented)
        refused = client.request(unsupported, path)
        assert_problem(refused, 405)
        assert _allow(refused) == expected, (path, unsupported)


def test_the_task_resources_allow_what_the_contract_says(client: Client) -> None:
    # The two answers that were wrong: GET was missing on the list, GET/PUT/PATCH on a task.
    assert client.options("/api/tasks").headers["allow"] == "GET, OPTIONS, POST"
    assert (
        client.options(f"/api/tasks/{uuid.UUID(int=1)}").headers["allow"]
        == "DELETE, GET, OPTIONS, PATCH, PUT"
    )


# --- bodies that are not JSON -------------------------------------------------------------

BODY_ENDPOINTS = [
    ("POST", "/api/auth/register"),
    ("POST", "/api/auth/login"),
    ("POST", "/api/tasks"),
    ("PUT", "/api/tasks/{id}"),
    ("PATCH", "/api/tasks/{id}"),
]


@pytest.mark.parametrize(("method", "path"), BODY_ENDPOINTS)
@pytest.mark.parametrize("content", [b"", b"   "], ids=["empty", "blank"])
def test_an_empty_body_is_not_valid_json_so_400(
    client: Client, alice: Account, method: str, path: str, content: bytes
) -> None:
    task = create_task(client, alice)
    headers = {**alice.headers, "content-type": "application/json"}

    response = client.request(method, path.format(id=task["id"]), content=content, headers=headers)

    assert_problem(response, 400)
    assert client.get(f"/api/tasks/{task['id']}", headers=alice.headers).json() == task


@pytest.mark.parametrize(("method", "path"), BODY_ENDPOINTS)
def test_a_body_that_is_not_json_is_400(
    client: Client, alice: Account, method: str, path: str
) -> None:
    task = create_task(client, alice)
    headers = {**alice.headers, "content-type": "application/json"}

    response = client.request(
        method, path.format(id=task["id"]), content=b"<xml/>", headers=headers
    )

    assert_problem(response, 400)


# --- CORS -----------------------------------------------------------------------------------


def _preflight(client: Client, origin: str) -> Any:
    return client.options(
        "/api/tasks",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )


def test_a_preflight_from_the_frontend_is_allowed(client: Client) -> None:
    response = _preflight(client, FRONTEND_ORIGIN)

    assert 200 <= response.status_code < 300
    assert response.headers["access-control-allow-origin"] == FRONTEND_ORIGIN
    methods = {m.strip() for m in response.headers["access-control-allow-methods"].split(",")}
    assert {"GET", "POST", "PUT", "PATCH", "DELETE"} <= methods
    allowed = {
        h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")
    }
    assert {"authorization", "content-type"} <= allowed


def test_a_request_from_the_frontend_gets_its_origin_back(client: Client, alice: Account) -> None:
    response = client.get("/api/tasks", headers={**alice.headers, "Origin": FRONTEND_ORIGIN})

    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == FRONTEND_ORIGIN


@pytest.mark.parametrize(
    "origin", ["http://evil.example", "http://localhost:3001", "https://localhost:3000", "null"]
)
def test_a_preflight_from_another_origin_is_not_allowed(client: Client, origin: str) -> None:
    response = _preflight(client, origin)

    assert response.headers.get("access-control-allow-origin") not in {origin, "*"}
    assert response.status_code >= 400


def test_a_refused_preflight_is_problem_details(client: Client) -> None:
    response = _preflight(client, "http://evil.example")

    assert_problem(response, response.status_code)


def test_the_location_header_is_exposed_to_the_frontend(client: Client, alice: Account) -> None:
    response = client.post(
        "/api/tasks", json={"title": "x"}, headers={**alice.headers, "Origin": FRONTEND_ORIGIN}
    )

    assert response.status_code == 201
    assert response.headers["access-control-allow-origin"] == FRONTEND_ORIGIN
    exposed = {
        h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")
    }
    assert "location" in exposed


def test_a_frontend_on_another_origin_may_send_every_header_the_api_reads(
    client: Client,
) -> None:
    response = client.options(
        "/api/tasks/00000000-0000-0000-0000-000000000001",
        headers={
            "Origin": FRONTEND_ORIGIN,
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": (
                "authorization, content-type, if-match, if-none-match, idempotency-key,"
                " x-request-id"
            ),
        },
    )

    assert 200 <= response.status_code < 300, response.text
    allowed = {
        h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")
    }
    assert {
        "authorization",
        "content-type",
        "if-match",
        "if-none-match",
        "idempotency-key",
        "x-request-id",
    } <= allowed


def test_a_frontend_on_another_origin_may_read_every_header_the_api_sends(
    client: Client, alice: Account
) -> None:
    response = client.post(
        "/api/tasks", json={"title": "x"}, headers={**alice.headers, "Origin": FRONTEND_ORIGIN}
    )

    exposed = {
        h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")
    }
    assert {"etag", "location", "retry-after", "www-authenticate", "x-request-id"} <= exposed


def test_a_request_from_another_origin_gets_no_allow_origin(client: Client) -> None:
    response = client.get("/health", headers={"Origin": "http://evil.example"})

    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


def test_allowed_origin_is_never_a_wildcard(client: Client, alice: Account) -> None:
    responses = [
        _preflight(client, FRONTEND_ORIGIN),
        _preflight(client, "http://evil.example"),
        client.get("/health", headers={"Origin": FRONTEND_ORIGIN}),
        client.get("/api/tasks", headers={"Origin": "http://evil.example", **alice.headers}),
        client.get("/api/tasks", headers={"Origin": FRONTEND_ORIGIN}),
    ]

    for response in responses:
        assert response.headers.get("access-control-allow-origin") != "*"


def test_cors_origins_come_from_the_settings(clean_database: str) -> None:
    other = "https://app.example.com"
    settings = make_settings(clean_database, cors_origins=(other,))
    with TestClient(create_app(settings)) as client:
        assert _preflight(client, other).headers["access-control-allow-origin"] == other
        refused = _preflight(client, FRONTEND_ORIGIN)
        assert refused.headers.get("access-control-allow-origin") != FRONTEND_ORIGIN


# --- the OpenAPI document -------------------------------------------------------------------

EXPECTED_STATUSES = {
    ("get", "/health"): {200, 503},
    ("get", "/health/live"): {200},
    ("get", "/metrics"): {200, 401},
    ("post", "/api/auth/register"): {201, 400, 409, 413, 422, 429, 503},
    ("post", "/api/auth/login"): {200, 400, 401, 413, 422, 429, 503},
    ("post", "/api/auth/logout"): {200, 401, 409, 503},
    ("post", "/api/auth/logout-all"): {200, 401, 409, 503},
    ("post", "/api/auth/password"): {200, 400, 401, 409, 413, 422, 429, 503},
    ("get", "/api/auth/me"): {200, 401, 409, 503},
    ("delete", "/api/auth/me"): {204, 400, 401, 409, 413, 422, 429, 503},
    ("patch", "/api/auth/me"): {200, 400, 401, 409, 413, 422, 503},
    ("get", "/api/tasks"): {200, 401, 409, 422, 503},
    ("post", "/api/tasks"): {201, 400, 401, 409, 413, 422, 503},
    ("get", "/api/tasks/{task_id}"): {200, 401, 403, 404, 409, 422, 503},
    ("put", "/api/tasks/{task_id}"): {200, 400, 401, 403, 404, 409, 413, 422, 503},
    ("patch", "/api/tasks/{task_id}"): {200, 400, 401, 403, 404, 409, 413, 422, 503},
    ("delete", "/api/tasks/{task_id}"): {204, 401, 403, 404, 409, 422, 503},
    ("get", "/api/tags"): {200, 401, 409, 503},
    ("patch", "/api/tags/{name}"): {200, 400, 401, 404, 409, 413, 422, 503},
    ("delete", "/api/tags/{name}"): {204, 401, 404, 409, 503},
}


@pytest.fixture(scope="module")
def openapi(session_client: Client) -> dict[str, Any]:
    response = session_client.get("/schema/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/")
    assert response.headers["content-type"].split(";")[0].endswith("json")
    document = response.json()
    assert isinstance(document, dict)
    return document


def _operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    methods = {"get", "post", "put", "patch", "delete"}
    return {
        (method, path): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in methods
    }


def test_openapi_lists_every_operation(openapi: dict[str, Any]) -> None:
    assert openapi["openapi"].startswith("3.")
    assert set(_operations(openapi)) == set(EXPECTED_STATUSES)


@pytest.mark.parametrize("operation", list(EXPECTED_STATUSES), ids=" ".join)
def test_openapi_lists_the_statuses_each_operation_can_return(
    openapi: dict[str, Any], operation: tuple[str, str]
) -> None:
    responses = _operations(openapi)[operation]["responses"]

    assert {int(status) for status in responses} >= EXPECTED_STATUSES[operation]


@pytest.mark.parametrize("operation", list(EXPECTED_STATUSES), ids=" ".join)
def test_openapi_describes_every_error_as_problem_details(
    openapi: dict[str, Any], operation: tuple[str, str]
) -> None:
    responses = _operations(openapi)[operation]["responses"]

    for status, response in responses.items():
        if int(status) < 400 or operation == ("get", "/health"):
            continue
        assert set(response.get("content", {})) == {PROBLEM_JSON}, (status, response)
        schema = response["content"][PROBLEM_JSON]["schema"]
        assert schema == {"$ref": "#/components/schemas/ProblemDetails"}, (status, schema)


def test_openapi_problem_details_schema_has_status_and_detail(openapi: dict[str, Any]) -> None:
    schema = openapi["components"]["schemas"]["ProblemDetails"]

    assert schema["properties"]["status"]["type"] == "integer"
    assert schema["properties"]["detail"]["type"] == "string"
    assert {"status", "detail"} <= set(schema["required"])
    assert "errors" in schema["properties"]


def test_openapi_describes_the_unhealthy_answer_as_it_is_sent(openapi: dict[str, Any]) -> None:
    """GET /health answers 503 with {"status": "unhealthy", "database": "unreachable"}, not
    with problem details; the document must say so."""
    unhealthy = _operations(openapi)[("get", "/health")]["responses"]["503"]

    assert set(unhealthy["content"]) == {"application/json"}
    schema = unhealthy["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/HealthResponse"}


def test_openapi_declares_bearer_security_on_protected_operations(
    openapi: dict[str, Any],
) -> None:
    operations = _operations(openapi)
    # /metrics takes the operator's METRICS_TOKEN, never a user's token.
    public = {
        ("get", "/health"),
        ("get", "/health/live"),
        ("get", "/metrics"),
        ("post", "/api/auth/register"),
        ("post", "/api/auth/login"),
    }

    for key, operation in operations.items():
        if key in public:
            assert not operation.get("security"), key
        else:
            assert operation.get("security") == [{"bearer": []}], key
    scheme = openapi["components"]["securitySchemes"]["bearer"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")


def test_interactive_docs_are_served(client: Client) -> None:
    response = client.get("/schema")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
