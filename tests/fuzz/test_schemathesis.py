"""Schemathesis against the app's own OpenAPI document, served by the app over ASGI.

Every operation of the document is fuzzed with schema-valid (positive) and schema-breaking
(negative) requests, and a state machine walks the links between operations (POST /api/tasks ->
GET/PUT/PATCH/DELETE /api/tasks/{task_id}, ...). Every response goes through every check
schemathesis has: not_a_server_error, status_code_conformance, content_type_conformance,
response_schema_conformance, response_headers_conformance, positive_data_acceptance,
negative_data_rejection, ignored_auth, use_after_free, ensure_resource_availability,
missing_required_header, unsupported_method, max_response_time, ...

Requests are authenticated as a real user, registered with the API and logged in for every
generated case (so that a generated logout, logout-all or password-change attempt never leaves
the rest of the run with a dead token), through a schemathesis auth provider: the ignored_auth
check then knows the credentials are real and replays each accepted request without them and
with made-up ones, expecting 401.

Values the document names by a custom format (new and current passwords, task cursors,
Idempotency-Keys) and email addresses are drawn as real clients make them (tests/fuzz/formats.py,
checked against the server's rules in test_formats.py). The one status added to schemathesis'
defaults is 412 for a valid request with a stale If-Match, on the operations that declare one.

The coverage phase of schemathesis' own engine runs too: boundary values of every parameter,
requests without required headers, and every method a path does not document, which is where
unsupported_method (405 with an Allow header) and allow_header_conformance (Allow on OPTIONS
lists exactly the documented methods) look. It runs every check except
positive_data_acceptance, which counts the document's own examples (an email already taken, a
weak password, a made-up cursor) as valid requests wrongly refused.

Bounded and seeded: EXAMPLES_PER_OPERATION examples per operation and generation mode,
derandomized, so a run finds the same things every time.

(`schemathesis.pytest.from_fixture` cannot run under pytest 9, whose nodes have no `_nodeid`;
the operations' Hypothesis strategies are used directly instead, as schemathesis documents for
"non-schemathesis tests".)
"""

from collections import Counter
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from litestar import Litestar
from schemathesis import AuthContext, Case, GenerationMode
from schemathesis.checks import CHECKS
from schemathesis.engine import Status, events, from_schema
from schemathesis.errors import FailureGroup
from schemathesis.schemas import BaseSchema

from entrypoints.http.app import create_app
from tests.fuzz import formats
from tests.fuzz.support import DOCUMENT, OPENAPI_PATH, OPERATIONS, ids, operations
from tests.http.support import make_settings

OWNER_EMAIL = "fuzz-owner@example.com"
OWNER_PASSWORD = "plum-orbit-cascade-47"
EXAMPLES_PER_OPERATION = 25
SEED = 20240611
# Generous: only there to catch a request that hangs, not to time a busy CI machine.
MAX_RESPONSE_SECONDS = 10.0
# The 401 details that mean "your token does not work" (as opposed to a wrong password).
TOKEN_REFUSALS = {
    "Not authenticated",
    "Token expired",
    "Invalid token signature",
    "Invalid token",
    "Token revoked",
    "User not found",
}

# Drawing a case logs the owner in (the auth provider); when that makes the app's connection
# pool open a connection, psycopg_pool draws its expiry jitter from the `random` module, which
# Hypothesis notices. The generated data does not depend on it.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Do not use the `random` module inside strategies"
    ":hypothesis.errors.HypothesisDeprecationWarning"
)

FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    database=None,
    deadline=None,
    # Drawing a case logs the owner in (the auth provider), which Hypothesis counts as slow.
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)
STATEFUL_SETTINGS = settings(
    FUZZ_SETTINGS,
    max_examples=30,
    stateful_step_count=6,
    phases=[Phase.explicit, Phase.generate],
)


def _negatable(document: dict[str, Any], method: str, path: str) -> bool:
    """Whether an operation has anything to break: parameters, a body or credentials."""
    operation = document["paths"][path][method.lower()]
    return bool(
        operation.get("parameters") or operation.get("requestBody") or operation.get("security")
    )


NEGATABLE = [(m, p) for m, p in OPERATIONS if _negatable(DOCUMENT, m, p)]

# Passwords, cursors, Idempotency-Keys and emails as real clients make them.
formats.register()


def _declares_header(document: dict[str, Any], method: str, path: str, name: str) -> bool:
    operation = document["paths"][path][method.lower()]
    return any(
        parameter.get("in") == "header" and parameter.get("name", "").lower() == name.lower()
        for parameter in operation.get("parameters", [])
    )


# The operations with an If-Match header: PUT, PATCH and DELETE /api/tasks/{task_id}.
CONDITIONAL = [(m, p) for m, p in OPERATIONS if _declares_header(DOCUMENT, m, p, "If-Match")]
# A schema-valid If-Match names a version of the task; any version but the current one is
# rightly refused with 412 Precondition Failed (RFC 9110, 13.1.1), and a generated string is
# all but never the current ETag. So for these operations only, 412 is an acceptable answer to
# a valid request, besides schemathesis' defaults. Every other check and status stays as it is.
DEFAULT_CHECKS = schemathesis.Config().projects.default.checks
DEFAULT_ACCEPTANCE = DEFAULT_CHECKS.positive_data_acceptance
CONDITIONAL_EXPECTED_STATUSES = [*DEFAULT_ACCEPTANCE.expected_statuses, "412"]


def _config() -> schemathesis.Config:
    """Every check enabled (max_response_time only checks when it has a limit), seeded."""
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "checks": {"enabled": True, "max_response_time": MAX_RESPONSE_SECONDS},
            "generation": {"deterministic": True},
            "operations": [
                {
                    "include-name": f"{method} {path}",
                    "checks": {
                        "positive_data_acceptance": {
                            "expected-statuses": CONDITIONAL_EXPECTED_STATUSES
                        }
                    },
                }
                for method, path in CONDITIONAL
            ],
        }
    )


def _coverage_config() -> schemathesis.Config:
    """Schemathesis' coverage phase alone, with every check but positive_data_acceptance."""
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "checks": {
                "enabled": True,
                "max_response_time": MAX_RESPONSE_SECONDS,
                "positive_data_acceptance": {"enabled": False},
            },
            "generation": {"deterministic": True},
            "phases": {
                "examples": {"enabled": False},
                "coverage": {"enabled": True},
                "fuzzing": {"enabled": False},
                "stateful": {"enabled": False},
            },
        }
    )


def _post_json(schema: BaseSchema, path: str, body: Any) -> Any:
    return schema[path]["POST"].Case(body=body, media_type="application/json").call()


def _owner_token(schema: BaseSchema) -> str:
    response = _post_json(
        schema, "/api/auth/login", {"email": OWNER_EMAIL, "password": OWNER_PASSWORD}
    )
    assert response.status_code == 200, (response.status_code, response.text)
    token = response.json()["access_token"]
    assert isinstance(token, str)
    return token


def _fresh_login(schema: BaseSchema) -> type:
    """An auth provider that logs the owner in for every case."""

    class FreshLogin:
        def get(self, case: Case[Any], context: AuthContext) -> str:
            return _owner_token(schema)

        def set(self, case: Case[Any], data: str, context: AuthContext) -> None:
            case.headers["Authorization"] = f"Bearer {data}"

    return FreshLogin


@pytest.fixture(scope="module")
def app(database_url: str) -> Litestar:
    return create_app(make_settings(database_url))


@pytest.fixture(scope="module")
def unlocked_app(database_url: str) -> Litestar:
    """The app with a lockout no run reaches: the coverage phase tries the document's example
    email with many a wrong password, and a locked owner could no longer log in."""
    return create_app(make_settings(database_url, login_max_failures=1000))


@pytest.fixture
def api_schema(app: Litestar, clean_database: str) -> BaseSchema:
    """The document the app serves, with the owner registered and every case logged in."""
    schema = schemathesis.openapi.from_asgi(OPENAPI_PATH, app, config=_config())
    _register_owner(schema)
    schema.auth(refresh_interval=None)(_fresh_login(schema))
    return schema


def _problem(response: Any) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _complaint(response: Any) -> str:
    """What an error answer complains about, to tell one rejection from another."""
    body = _problem(response)
    errors = body.get("errors")
    if isinstance(errors, list):
        return ",".join(sorted({str(e.get("message")) for e in errors if isinstance(e, dict)}))
    return str(body.get("detail", ""))


class Findings:
    """Every distinct failure of the checks, each with the shortest request that shows it, in
    place of the first one only: one run reports all that is wrong with an operation."""

    def __init__(self) -> None:
        self.statuses: Counter[tuple[str, int]] = Counter()
        self.token_refusals: list[str] = []
        self._found: dict[tuple[str, str, int, str], str] = {}

    def validate(self, case: Case[Any], response: Any, validate: Callable[[], None]) -> None:
        self.statuses[(case.operation.label, response.status_code)] += 1
        positive = case.meta is not None and case.meta.generation.mode.is_positive
        refused = response.status_code == 401 and _problem(response).get("detail")
        if positive and refused in TOKEN_REFUSALS:
            self.token_refusals.append(f"{case.operation.label}: {response.text}")
        try:
            validate()
        except FailureGroup as group:
            for failure in group.exceptions:
                key = (
                    case.operation.label,
                    failure.code,
                    response.status_code,
                    _complaint(response),
                )
                report = (
                    f"{failure.code} {failure.title} on {case.operation.label}\n"
                    f"{failure.message}\n"
                    f"[{response.status_code}] {response.text[:500]}\n"
                    f"{case.as_curl_command()}"
                )
                if key not in self._found or len(report) < len(self._found[key]):
                    self._found[key] = report

    def assert_none(self) -> None:
        if self._found:
            pytest.fail("schemathesis found:\n\n" + "\n\n".join(self._found.values()))
        # The owner's token worked for every schema-valid request: the run was authenticated.
        assert not self.token_refusals, self.token_refusals


def _fuzz(strategy: Any) -> Findings:
    findings = Findings()

    @FUZZ_SETTINGS
    @given(case=strategy)
    def run(case: Case[Any]) -> None:
        response = case.call()
        findings.validate(case, response, lambda: case.validate_response(response))

    run()
    findings.assert_none()
    return findings


def test_every_check_is_enabled(api_schema: BaseSchema) -> None:
    names = set(CHECKS.get_all_names())
    assert {
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "response_headers_conformance",
        "positive_data_acceptance",
        "negative_data_rejection",
        "ignored_auth",
        "use_after_free",
        "ensure_resource_availability",
        "missing_required_header",
        "unsupported_method",
        "allow_header_conformance",
    } <= names
    for method, path in OPERATIONS:
        config = api_schema.config.checks_config_for(operation=api_schema[path][method])
        assert [name for name in names if not config.get_by_name(name=name).enabled] == []
        assert config.max_response_time.enabled
        assert config.max_response_time.limit == MAX_RESPONSE_SECONDS
        # Only a stale If-Match may answer a valid request with 412; nothing else is loosened.
        expected = config.positive_data_acceptance.expected_statuses
        if (method, path) in CONDITIONAL:
            assert expected == [*DEFAULT_ACCEPTANCE.expected_statuses, "412"]
        else:
            assert expected == DEFAULT_ACCEPTANCE.expected_statuses
        for name in names - {"positive_data_acceptance"}:
            default = DEFAULT_CHECKS.get_by_name(name=name)
            configured = config.get_by_name(name=name)
            assert getattr(configured, "expected_statuses", None) == getattr(
                default, "expected_statuses", None
            ), name
    assert CONDITIONAL == [
        ("DELETE", "/api/tasks/{task_id}"),
        ("PATCH", "/api/tasks/{task_id}"),
        ("PUT", "/api/tasks/{task_id}"),
    ]


def test_the_served_document_is_the_fuzzed_one(api_schema: BaseSchema) -> None:
    assert operations(api_schema.raw_schema) == OPERATIONS
    assert len(OPERATIONS) >= 14


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=ids(OPERATIONS))
def test_valid_requests(api_schema: BaseSchema, method: str, path: str) -> None:
    operation = api_schema[path][method]
    findings = _fuzz(operation.as_strategy(generation_mode=GenerationMode.POSITIVE))
    assert findings.statuses


@pytest.mark.parametrize(("method", "path"), NEGATABLE, ids=ids(NEGATABLE))
def test_invalid_requests(api_schema: BaseSchema, method: str, path: str) -> None:
    operation = api_schema[path][method]
    findings = _fuzz(operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))
    assert findings.statuses


def _register_owner(schema: BaseSchema) -> None:
    response = _post_json(
        schema, "/api/auth/register", {"email": OWNER_EMAIL, "password": OWNER_PASSWORD}
    )
    assert response.status_code == 201, (response.status_code, response.text)


def _start_over(schema: BaseSchema, database_url: str) -> None:
    """Each scenario of the state machine starts from the same state: the owner and nothing
    else. (What earlier scenarios left behind, such as tasks or used Idempotency-Keys, would
    otherwise change what later ones can draw.) Everything of a user goes with the user."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute("DELETE FROM users")
    _register_owner(schema)


def test_stateful_links(api_schema: BaseSchema, clean_database: str) -> None:
    base = api_schema.as_state_machine()
    # The document has no OpenAPI links; schemathesis infers them from the response schemas.
    # A created task must lead to every operation on /api/tasks/{task_id}.
    created = api_schema.raw_schema["paths"]["/api/tasks"]["post"]["responses"]["201"]
    targets = {
        link["operationRef"].rsplit("/", 1)[-1]: link["parameters"]
        for link in created.get("links", {}).values()
    }
    assert targets == {
        method: {"path.task_id": "$response.body#/id"}
        for method in ("get", "put", "patch", "delete")
    }
    findings = Findings()

    class Machine(base):  # type: ignore[misc, valid-type]
        def setup(self) -> None:
            _start_over(api_schema, clean_database)
            super().setup()

        def validate_response(
            self, response: Any, case: Case[Any], additional_checks: Any = None, **kwargs: Any
        ) -> None:
            findings.validate(
                case,
                response,
                lambda: super(Machine, self).validate_response(
                    response, case, additional_checks, **kwargs
                ),
            )

    Machine.run(settings=STATEFUL_SETTINGS)
    # The links were followed: an operation on /api/tasks/{task_id} succeeded, which takes the
    # id of a task the run created (a generated UUID names no task).
    succeeded = {label for label, status in findings.statuses if status < 300}
    assert "POST /api/tasks" in succeeded, findings.statuses
    assert succeeded & {
        "GET /api/tasks/{task_id}",
        "PATCH /api/tasks/{task_id}",
        "PUT /api/tasks/{task_id}",
        "DELETE /api/tasks/{task_id}",
    }, findings.statuses
    findings.assert_none()


def test_the_coverage_phase_finds_nothing(unlocked_app: Litestar, clean_database: str) -> None:
    schema = schemathesis.openapi.from_asgi(OPENAPI_PATH, unlocked_app, config=_coverage_config())
    _register_owner(schema)
    schema.auth(refresh_interval=None)(_fresh_login(schema))
    config = schema.config.checks_config_for(operation=schema["/api/tasks"]["GET"])
    assert not config.positive_data_acceptance.enabled
    enabled = {name for name in CHECKS.get_all_names() if config.get_by_name(name=name).enabled}
    assert enabled == set(CHECKS.get_all_names()) - {"positive_data_acceptance"}

    failures: list[str] = []
    passed: Counter[str] = Counter()
    scenarios: Counter[Status] = Counter()
    for event in from_schema(schema).execute():
        if isinstance(event, events.NonFatalError | events.FatalError):
            failures.append(f"{event.label if hasattr(event, 'label') else ''}: {event.value!r}")
        if not isinstance(event, events.ScenarioFinished):
            continue
        scenarios[event.status] += 1
        for checks in event.recorder.checks.values():
            for check in checks:
                if check.failure_info is None:
                    passed[check.name] += check.status == Status.SUCCESS
                    continue
                failure = check.failure_info.failure
                failures.append(
                    f"{check.name} on {event.label}: {failure.title}\n{failure.message}\n"
                    f"{check.failure_info.code_sample}"
                )

    assert not failures, "schemathesis' coverage phase found:\n\n" + "\n\n".join(failures)
    assert scenarios == {Status.SUCCESS: len(OPERATIONS)}, scenarios
    # The checks of issue 12 really looked at answers: 405s to undocumented methods, Allow on
    # OPTIONS.
    assert passed["unsupported_method"] > 0, passed
    assert passed["allow_header_conformance"] > 0, passed
    assert passed["not_a_server_error"] > 100, passed
