"""Two `todo-api serve` processes on different ports against one database, as on two hosts
(requests through the pooler, migrations over the direct URL, as on Neon), behave as one
service: what one of them is told is in force on the other at once."""

import secrets
from collections.abc import Iterator

import httpx
import pytest

from tests.deployment.conftest import Database
from tests.faults.support import PASSWORD, Server, bearer, service_env, sign_up, start_server

STARTUP_SECONDS = 30
MAX_FAILURES = 3


@pytest.fixture(scope="module")
def hosts(
    tmp_path_factory: pytest.TempPathFactory, migrated_pooled_database: Database
) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    tmp_path = tmp_path_factory.mktemp("hosts")
    env = service_env(
        tmp_path,
        migrated_pooled_database.pooled,
        DATABASE_URL_UNPOOLED=migrated_pooled_database.direct,
        DATABASE_PREPARE_THRESHOLD="off",
        LOGIN_MAX_FAILURES=str(MAX_FAILURES),
    )
    servers: list[Server] = []
    try:
        for name in ("host-a", "host-b"):
            servers.append(start_server(tmp_path, env, name=name))
        for server in servers:
            server.wait_healthy(timeout=STARTUP_SECONDS)
        with (
            httpx.Client(base_url=servers[0].base_url, timeout=10) as a,
            httpx.Client(base_url=servers[1].base_url, timeout=10) as b,
        ):
            yield a, b
    finally:
        for server in servers:
            server.kill()


def _account(a: httpx.Client) -> tuple[str, str]:
    email = f"host-{secrets.token_hex(4)}@example.com"
    return email, sign_up(str(a.base_url), email)


def test_a_logout_on_one_host_is_in_force_on_the_other_at_once(
    hosts: tuple[httpx.Client, httpx.Client],
) -> None:
    a, b = hosts
    _, token = _account(a)
    assert b.get("/api/auth/me", headers=bearer(token)).status_code == 200

    assert a.post("/api/auth/logout", headers=bearer(token)).status_code == 200

    refused = b.get("/api/auth/me", headers=bearer(token))
    assert refused.status_code == 401
    assert refused.json()["detail"] == "Token revoked"


def test_a_logout_all_on_one_host_is_in_force_on_the_other_at_once(
    hosts: tuple[httpx.Client, httpx.Client],
) -> None:
    a, b = hosts
    _, first_device = _account(a)
    assert b.get("/api/tasks", headers=bearer(first_device)).status_code == 200

    logged_out = a.post("/api/auth/logout-all", headers=bearer(first_device))
    assert logged_out.status_code == 200, logged_out.text

    refused = b.get("/api/tasks", headers=bearer(first_device))
    assert refused.status_code == 401
    assert refused.json()["detail"] == "Token revoked"


def test_a_login_lockout_earned_on_one_host_holds_on_the_other(
    hosts: tuple[httpx.Client, httpx.Client],
) -> None:
    a, b = hosts
    email, _ = _account(a)
    for _ in range(MAX_FAILURES):
        wrong = a.post("/api/auth/login", json={"email": email, "password": "not the password"})
        assert wrong.status_code == 401

    locked = b.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert locked.status_code == 429, locked.text
    assert int(locked.headers["retry-after"]) > 0


def test_an_idempotency_key_used_on_one_host_is_honoured_on_the_other(
    hosts: tuple[httpx.Client, httpx.Client],
) -> None:
    a, b = hosts
    _, token = _account(a)
    headers = bearer(token) | {"Idempotency-Key": secrets.token_hex(8)}
    body = {"title": "Buy milk once"}

    first = a.post("/api/tasks", json=body, headers=headers)
    retried = b.post("/api/tasks", json=body, headers=headers)
    other_body = b.post("/api/tasks", json={"title": "Something else"}, headers=headers)

    assert first.status_code == 201, first.text
    assert retried.status_code == 201, retried.text
    assert retried.json() == first.json()
    assert other_body.status_code == 422
    listed = b.get("/api/tasks", headers=bearer(token)).json()
    assert [task["id"] for task in listed["tasks"]] == [first.json()["id"]]
