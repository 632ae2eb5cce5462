"""todo-api with a real Better Auth: a person signs up in Better Auth, the frontend fetches a
JWT from it (GET /api/auth/token) and sends it to todo-api as a bearer token. No code of
todo-api's runs on the Better Auth side."""

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import jwt
import psycopg
import pytest
from litestar.testing import TestClient

from entrypoints.bootstrap import open_services
from entrypoints.http.app import create_app
from entrypoints.settings import BetterAuthSettings
from tests.better_auth.conftest import BetterAuthServer, StartBetterAuth
from tests.better_auth.keys import SigningKey, hmac_signed
from tests.http.support import (
    Client,
    assert_me,
    assert_problem,
    assert_task,
    bearer,
    log_in,
    make_settings,
    register,
)

UNVERIFIED_CONFLICT = (
    "An account with this email already exists; verify the email in Better Auth to link it"
)


@contextmanager
def todo_api(database_url: str, server: BetterAuthServer) -> Iterator[Client]:
    """todo-api configured for that Better Auth, as BETTER_AUTH_URL alone configures it."""
    settings = make_settings(database_url, better_auth=BetterAuthSettings.at(server.url))
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture
def api(clean_database: str, better_auth: BetterAuthServer) -> Iterator[Client]:
    with todo_api(clean_database, better_auth) as client:
        yield client


def unique_email(name: str) -> str:
    return f"{name}.{uuid.uuid4().hex[:8]}@example.com"


def rows(database_url: str, statement: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url) as connection:
        return connection.execute(statement, params).fetchall()


def test_a_better_auth_user_manages_their_tasks_with_its_token(
    api: Client, better_auth: BetterAuthServer
) -> None:
    email = unique_email("ada")
    token = better_auth.token(better_auth.sign_up(email))
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "EdDSA"
    headers = bearer(token)

    me = api.get("/api/auth/me", headers=headers)
    assert me.status_code == 200, me.text
    account = assert_me(me.json(), email=email, sign_in="better-auth")

    created = api.post("/api/tasks", json={"title": "Buy milk"}, headers=headers)
    assert created.status_code == 201, created.text
    task = assert_task(created.json())
    assert task["user_id"] == account["id"]
    assert created.headers["location"] == f"/api/tasks/{task['id']}"
    path = created.headers["location"]

    listed = api.get("/api/tasks", headers=headers)
    assert listed.status_code == 200
    assert [t["id"] for t in listed.json()["tasks"]] == [task["id"]]
    assert api.get(path, headers=headers).json() == task
    put = api.put(path, json={"title": "Buy oat milk"}, headers=headers)
    assert (put.status_code, put.json()["title"]) == (200, "Buy oat milk")
    patched = api.patch(path, json={"completed": True}, headers=headers)
    assert (patched.status_code, patched.json()["completed"]) == (200, True)
    assert api.delete(path, headers=headers).status_code == 204
    assert_problem(api.get(path, headers=headers), 404, "Task not found")


def test_each_better_auth_user_has_an_account_of_their_own(
    api: Client, better_auth: BetterAuthServer
) -> None:
    ada = bearer(better_auth.token(better_auth.sign_up(unique_email("ada"))))
    grace = bearer(better_auth.token(better_auth.sign_up(unique_email("grace"))))
    adas = api.post("/api/tasks", json={"title": "Ada's"}, headers=ada).json()

    assert api.get("/api/tasks", headers=grace).json()["tasks"] == []
    assert_problem(
        api.get(f"/api/tasks/{adas['id']}", headers=grace),
        403,
        "Access denied: task belongs to another user",
    )
    assert (
        api.get("/api/auth/me", headers=ada).json()["id"]
        != (api.get("/api/auth/me", headers=grace).json()["id"])
    )


def test_a_later_token_of_the_same_person_finds_the_same_account(
    api: Client, better_auth: BetterAuthServer
) -> None:
    session = better_auth.sign_up(unique_email("ada"))
    first = api.get("/api/auth/me", headers=bearer(better_auth.token(session))).json()
    time.sleep(1.1)  # a token with another iat, so another token
    later_token = better_auth.token(session)
    later = api.get("/api/auth/me", headers=bearer(later_token)).json()
    assert later == first


def test_a_token_of_another_better_auth_is_refused(
    api: Client, start_better_auth: StartBetterAuth
) -> None:
    other = start_better_auth()
    token = other.token(other.sign_up(unique_email("mallory")))

    assert_problem(api.get("/api/tasks", headers=bearer(token)), 401, "Invalid token signature")


def test_a_token_signed_with_an_unknown_key_under_the_right_issuer_is_refused(
    api: Client, better_auth: BetterAuthServer
) -> None:
    real = better_auth.token(better_auth.sign_up(unique_email("ada")))
    claims = jwt.decode(real, options={"verify_signature": False})
    forged = SigningKey("EdDSA", "not-better-auths").sign(claims)

    assert_problem(api.get("/api/tasks", headers=bearer(forged)), 401, "Invalid token signature")


def test_hs256_signed_with_better_auths_public_key_is_refused(
    api: Client, better_auth: BetterAuthServer
) -> None:
    real = better_auth.token(better_auth.sign_up(unique_email("ada")))
    claims = jwt.decode(real, options={"verify_signature": False})
    public_jwk = httpx.get(better_auth.jwks_url, timeout=10).json()["keys"][0]

    forged = hmac_signed(claims, json.dumps(public_jwk).encode(), kid=public_jwk["kid"])
    assert_problem(api.get("/api/tasks", headers=bearer(forged)), 401, "Invalid token signature")


def test_own_tokens_still_work_next_to_better_auths(api: Client) -> None:
    register(api, "bob@example.com")
    token = log_in(api, "bob@example.com")
    me = api.get("/api/auth/me", headers=bearer(token))
    assert_me(me.json(), email="bob@example.com", sign_in="password")


def test_an_rs256_better_auth_works_too(
    clean_database: str, start_better_auth: StartBetterAuth
) -> None:
    rs256 = start_better_auth(alg="RS256")
    token = rs256.token(rs256.sign_up(unique_email("ada")))
    assert jwt.get_unverified_header(token)["alg"] == "RS256"

    with todo_api(clean_database, rs256) as api:
        created = api.post("/api/tasks", json={"title": "RS256"}, headers=bearer(token))
        assert created.status_code == 201, created.text


def test_a_rotated_key_is_picked_up_without_a_restart(
    clean_database: str, start_better_auth: StartBetterAuth
) -> None:
    rotating = start_better_auth(rotation_seconds=2)
    session = rotating.sign_up(unique_email("ada"))
    before = rotating.token(session)

    with todo_api(clean_database, rotating) as api:
        assert api.get("/api/auth/me", headers=bearer(before)).status_code == 200
        fetched_at = time.monotonic()
        time.sleep(2.5)
        after = rotating.token(session)
        assert jwt.get_unverified_header(after)["kid"] != jwt.get_unverified_header(before)["kid"]
        # The new kid makes todo-api fetch the keys again, once ten seconds have passed since
        # the last fetch (made-up kids cannot make it ask more often).
        time.sleep(max(0.0, fetched_at + 10.5 - time.monotonic()))
        me = api.get("/api/auth/me", headers=bearer(after))
        assert me.status_code == 200, me.text
        assert api.get("/api/auth/me", headers=bearer(before)).status_code == 200


def test_while_better_auth_is_down_cached_keys_work_and_unknown_ones_are_503(
    clean_database: str, start_better_auth: StartBetterAuth
) -> None:
    fleeting = start_better_auth()
    token = fleeting.token(fleeting.sign_up(unique_email("ada")))

    with todo_api(clean_database, fleeting) as warmed:
        assert warmed.get("/api/auth/me", headers=bearer(token)).status_code == 200
        fleeting.stop()
        # The key was fetched before Better Auth went away.
        assert warmed.get("/api/tasks", headers=bearer(token)).status_code == 200

    # A process that never saw the key cannot check the token: not the client's fault.
    with todo_api(clean_database, fleeting) as cold:
        response = cold.get("/api/tasks", headers=bearer(token))
        assert_problem(response, 503)
        assert int(response.headers["retry-after"]) >= 1
        # todo-api's own tokens do not need Better Auth at all.
        register(cold, "bob@example.com")
        assert cold.get("/api/tasks", headers=bearer(log_in(cold, "bob@example.com"))).is_success


def test_an_unverified_email_does_not_open_the_password_account_and_a_verified_one_links_it(
    api: Client, better_auth: BetterAuthServer
) -> None:
    email = unique_email("ada")
    registered = register(api, email)
    password_token = log_in(api, email)
    kept = api.post("/api/tasks", json={"title": "Mine"}, headers=bearer(password_token)).json()
    session = better_auth.sign_up(email)

    unverified = bearer(better_auth.token(session))
    assert_problem(api.get("/api/tasks", headers=unverified), 409, UNVERIFIED_CONFLICT)
    assert_problem(api.get("/api/auth/me", headers=unverified), 409, UNVERIFIED_CONFLICT)

    better_auth.verify_email(email)
    verified = bearer(better_auth.token(session))
    me = api.get("/api/auth/me", headers=verified)
    assert me.status_code == 200, me.text
    assert assert_me(me.json(), email=email, sign_in="better-auth")["id"] == registered["id"]
    assert [t["id"] for t in api.get("/api/tasks", headers=verified).json()["tasks"]] == [
        kept["id"]
    ]
    # A linked account can still log in with its password.
    assert_me(
        api.get("/api/auth/me", headers=bearer(log_in(api, email))).json(),
        email=email,
        sign_in="better-auth",
    )


def test_a_better_auth_account_has_no_password_here(
    api: Client, better_auth: BetterAuthServer
) -> None:
    email = unique_email("ada")
    headers = bearer(better_auth.token(better_auth.sign_up(email, "correct horse battery")))
    assert api.get("/api/auth/me", headers=headers).status_code == 200

    # Its Better Auth password is not a todo-api password: the usual 401, nothing revealed.
    login = api.post("/api/auth/login", json={"email": email, "password": "correct horse battery"})
    assert_problem(login, 401, "Invalid email or password")
    change = api.post(
        "/api/auth/password",
        json={"current_password": "correct horse battery", "new_password": "plum orbit 47 x"},
        headers=headers,
    )
    assert_problem(change, 409, "This account signs in through Better Auth")


def test_a_better_auth_account_is_deleted_without_a_password_body(
    api: Client, better_auth: BetterAuthServer, clean_database: str
) -> None:
    email = unique_email("ada")
    headers = bearer(better_auth.token(better_auth.sign_up(email)))
    me = api.get("/api/auth/me", headers=headers).json()
    api.post("/api/tasks", json={"title": "Gone soon"}, headers=headers)

    assert api.delete("/api/auth/me", headers=headers).status_code == 204

    assert rows(clean_database, "SELECT 1 FROM users WHERE id = %s", me["id"]) == []
    assert rows(clean_database, "SELECT 1 FROM tasks WHERE user_id = %s", me["id"]) == []
    assert rows(clean_database, "SELECT 1 FROM linked_identities") == []


def test_logout_revokes_a_better_auth_token_and_logout_all_every_earlier_one(
    api: Client, better_auth: BetterAuthServer
) -> None:
    session = better_auth.sign_up(unique_email("ada"))
    first = bearer(better_auth.token(session))
    assert api.post("/api/auth/logout", headers=first).status_code == 200
    assert_problem(api.get("/api/tasks", headers=first), 401, "Token revoked")

    time.sleep(1.1)  # a new token: Better Auth's times are whole seconds
    second = bearer(better_auth.token(session))
    assert api.post("/api/auth/logout-all", headers=second).status_code == 200
    assert_problem(api.get("/api/tasks", headers=second), 401, "Token revoked")

    time.sleep(1.1)  # issued after the cut-off's second
    third = bearer(better_auth.token(session))
    assert api.get("/api/tasks", headers=third).status_code == 200


async def test_concurrent_first_requests_create_one_account(
    clean_database: str, better_auth: BetterAuthServer
) -> None:
    email = unique_email("ada")
    token = better_auth.token(better_auth.sign_up(email))
    settings = make_settings(clean_database, better_auth=BetterAuthSettings.at(better_auth.url))

    async with open_services(settings, clean_database, wait_for_database=True) as services:
        users = await asyncio.gather(*(services.accounts.authenticate(token) for _ in range(12)))

    assert len({user.id for user in users}) == 1
    assert rows(clean_database, "SELECT count(*) FROM users WHERE email = %s", email) == [(1,)]
    assert rows(clean_database, "SELECT count(*) FROM linked_identities") == [(1,)]
