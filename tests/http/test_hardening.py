"""The hardening of issue 3: login throttling, the per-address limit, bounded hashing, size
limits, token rules and key rotation, logout-all, password change, account deletion, security
headers, CORS, and secrets kept out of logs and error bodies."""

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from functools import partial
from typing import Any

import httpx
import jwt
import psycopg
import pytest
from litestar.testing import TestClient
from zxcvbn import zxcvbn

from adapters.passwords import BcryptHasher
from adapters.postgres.pool import create_pool, open_pool
from entrypoints.bootstrap import build_services
from entrypoints.http.app import create_app
from entrypoints.settings import load_settings
from tests.http.support import (
    FRONTEND_ORIGIN,
    PASSWORD,
    SECRET,
    Account,
    Client,
    assert_me,
    assert_problem,
    assert_task,
    assert_user,
    bearer,
    comparable_headers,
    create_task,
    error_fields,
    log_in,
    make_settings,
    mint,
    register,
    standard_claims,
)

LOCKED = "Too many failed logins for this email; retry later"
RATE_LIMITED = "Too many attempts from this address; retry later"
BUSY = "The server is busy; retry shortly"
WEAK = "Password is too weak"
WRONG_PASSWORD = "wrong password, not the one"
NEW_PASSWORD = "Quartz-Marmot-417-Lantern"  # zxcvbn score 4
OLD_SECRET = "o" * 40
OTHER_SECRET = "t" * 40

AppFactory = Callable[..., Client]


@pytest.fixture
def app_with(clean_database: str) -> Iterator[AppFactory]:
    """Makes more apps over the test's (emptied) database, each with its own settings and
    pool, as another server process would be; they are shut down when the test ends."""
    with ExitStack() as stack:

        def make(**overrides: Any) -> Client:
            app = create_app(make_settings(clean_database, **overrides))
            return stack.enter_context(TestClient(app))

        yield make


def login(client: Client, email: str, password: str = PASSWORD) -> httpx.Response:
    return client.post("/api/auth/login", json={"email": email, "password": password})


def retry_after(response: httpx.Response) -> int:
    value = response.headers.get("retry-after", "")
    assert value.isdigit(), response.headers
    return int(value)


def fail_logins(client: Client, email: str, times: int) -> None:
    for _ in range(times):
        assert_problem(login(client, email, WRONG_PASSWORD), 401, "Invalid email or password")


def assert_locked(response: httpx.Response, *, at_most: int = 900) -> int:
    assert_problem(response, 429, LOCKED)
    seconds = retry_after(response)
    assert 1 <= seconds <= at_most
    return seconds


def move_failure_window_back(database_url: str, interval: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as connection:
        updated = connection.execute(
            "UPDATE login_failures SET window_started_at = window_started_at - %s::interval",
            (interval,),
        )
        assert updated.rowcount >= 1


def count_rows(database_url: str, query: str, *params: object) -> int:
    with psycopg.connect(database_url) as connection:
        row = connection.execute(query, params).fetchone()
        assert row is not None
        count: int = row[0]
        return count


def delete_account(client: Client, headers: dict[str, str], body: Any) -> httpx.Response:
    return client.request("DELETE", "/api/auth/me", json=body, headers=headers)


def change_password(
    client: Client, headers: dict[str, str], current: str, new: str
) -> httpx.Response:
    return client.post(
        "/api/auth/password",
        json={"current_password": current, "new_password": new},
        headers=headers,
    )


def away_from_a_minute_boundary() -> None:
    """The per-address limit counts in calendar minutes: start a run of attempts early enough
    in one that it ends in the same minute."""
    into_minute = time.time() % 60
    if into_minute > 55:
        time.sleep(60.2 - into_minute)


# --- login throttling -----------------------------------------------------------------------


def test_the_sixth_login_after_five_failures_is_429_even_with_the_right_password(
    client: Client, alice: Account
) -> None:
    fail_logins(client, alice.email, 5)

    response = login(client, alice.email, alice.password)

    assert_locked(response)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"
    # Still locked on the next try: the lock does not lift by being tested.
    assert_locked(login(client, alice.email, alice.password))


def test_four_failures_do_not_lock(client: Client, alice: Account) -> None:
    fail_logins(client, alice.email, 4)

    log_in(client, alice.email, alice.password)


def test_the_lock_covers_every_spelling_of_the_email(client: Client, alice: Account) -> None:
    fail_logins(client, "  ALICE@Example.com ", 5)

    assert_locked(login(client, alice.email, alice.password))


def test_a_locked_registered_email_and_a_locked_unregistered_one_look_alike(
    client: Client, alice: Account
) -> None:
    unknown = "nobody@example.com"
    fail_logins(client, alice.email, 5)
    fail_logins(client, unknown, 5)

    registered = login(client, alice.email, alice.password)
    unregistered = login(client, unknown, alice.password)

    assert_locked(registered)
    assert_locked(unregistered)
    assert registered.status_code == unregistered.status_code
    assert registered.content == unregistered.content

    assert comparable_headers(registered, ignore=frozenset({"retry-after"})) == (
        comparable_headers(unregistered, ignore=frozenset({"retry-after"}))
    )
    assert abs(retry_after(registered) - retry_after(unregistered)) <= 1


def test_a_burst_of_concurrent_guesses_is_held_to_the_limit_too(
    client: Client, alice: Account
) -> None:
    """Guesses sent at once must not all be tried: checking the lock and counting a failure
    have to be one step, or every guess of a burst passes the check before any is counted."""
    burst = 12
    start = threading.Barrier(burst)
    statuses: list[int] = []

    def guess(n: int) -> None:
        start.wait()
        statuses.append(login(client, alice.email, f"guess number {n}").status_code)

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(burst)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert len(statuses) == burst
    assert set(statuses) <= {401, 429}, statuses
    assert statuses.count(401) <= 5, f"{statuses.count(401)} of {burst} guesses were tried"
    assert_locked(login(client, alice.email, alice.password))


def test_a_successful_login_clears_the_failures(client: Client, alice: Account) -> None:
    fail_logins(client, alice.email, 4)
    log_in(client, alice.email, alice.password)

    fail_logins(client, alice.email, 4)

    log_in(client, alice.email, alice.password)


def test_the_lock_lives_in_the_database_and_holds_in_another_app_instance(
    client: Client, alice: Account, app_with: AppFactory
) -> None:
    fail_logins(client, alice.email, 5)

    another_process = app_with()

    assert_locked(login(another_process, alice.email, alice.password))


def test_failures_counted_by_two_app_instances_add_up(
    client: Client, alice: Account, app_with: AppFactory
) -> None:
    another_process = app_with()
    fail_logins(client, alice.email, 3)
    fail_logins(another_process, alice.email, 2)

    assert_locked(login(client, alice.email, alice.password))


def test_retry_after_counts_down_from_the_first_failure_of_the_window(
    client: Client, alice: Account, clean_database: str
) -> None:
    fail_logins(client, alice.email, 5)
    move_failure_window_back(clean_database, "10 minutes")

    seconds = assert_locked(login(client, alice.email, alice.password), at_most=300)

    assert seconds >= 290


def test_the_lock_ends_when_the_window_has_passed(
    client: Client, alice: Account, clean_database: str
) -> None:
    fail_logins(client, alice.email, 5)
    assert_locked(login(client, alice.email, alice.password))

    move_failure_window_back(clean_database, "16 minutes")

    # A stale window counts afresh: one failure is not a lock.
    fail_logins(client, alice.email, 1)
    log_in(client, alice.email, alice.password)


def test_login_max_failures_and_lockout_minutes_come_from_the_environment(
    clean_database: str,
) -> None:
    settings = load_settings(
        {
            "BETTER_AUTH_SECRET": SECRET,
            "DATABASE_URL": clean_database,
            "BCRYPT_ROUNDS": "4",
            "DATABASE_POOL_MIN": "1",
            "DATABASE_POOL_MAX": "4",
            "AUTH_RATE_PER_MINUTE": "0",
            "LOGIN_MAX_FAILURES": "2",
            "LOGIN_LOCKOUT_MINUTES": "1",
        },
        env_file=None,
    )
    with TestClient(create_app(settings)) as strict:
        register(strict, "alice@example.com")
        fail_logins(strict, "alice@example.com", 2)

        assert_locked(login(strict, "alice@example.com"), at_most=60)

        # Past one minute the lock is over (the default 15 minutes would still hold it).
        move_failure_window_back(clean_database, "61 seconds")
        log_in(strict, "alice@example.com")


# --- the per-address limit ------------------------------------------------------------------


def assert_rate_limited(response: httpx.Response) -> None:
    assert_problem(response, 429, RATE_LIMITED)
    assert 1 <= retry_after(response) <= 60
    assert response.headers["cache-control"] == "no-store"


def test_the_fourth_login_or_register_attempt_of_a_minute_is_429(app_with: AppFactory) -> None:
    limited = app_with(auth_rate_per_minute=3)
    away_from_a_minute_boundary()
    register(limited, "alice@example.com")
    log_in(limited, "alice@example.com")
    assert_problem(login(limited, "nobody@example.com"), 401, "Invalid email or password")

    # Right credentials or not, login or register: the address has had its three attempts.
    assert_rate_limited(login(limited, "alice@example.com"))
    assert_rate_limited(
        limited.post("/api/auth/register", json={"email": "bob@example.com", "password": PASSWORD})
    )


def test_the_default_limit_is_thirty_attempts_a_minute(clean_database: str) -> None:
    settings = replace(
        load_settings(
            {"BETTER_AUTH_SECRET": SECRET, "DATABASE_URL": clean_database}, env_file=None
        ),
        bcrypt_rounds=4,
        pool_min_size=1,
        pool_max_size=4,
    )
    assert settings.auth_rate_per_minute == 30
    with TestClient(create_app(settings)) as limited:
        away_from_a_minute_boundary()
        for n in range(30):
            assert_problem(login(limited, f"nobody{n}@example.com"), 401)

        assert_rate_limited(login(limited, "nobody@example.com"))


def test_a_rate_of_zero_turns_the_per_address_limit_off(client: Client) -> None:
    register(client, "alice@example.com")
    for n in range(40):
        assert_problem(login(client, f"nobody{n}@example.com"), 401, "Invalid email or password")
    for n in range(5):
        register(client, f"user{n}@example.com")

    log_in(client, "alice@example.com")


# --- bounded password hashing ---------------------------------------------------------------


def test_a_storm_of_logins_past_the_hashing_capacity_is_503_and_health_still_answers(
    clean_database: str,
) -> None:
    # Logins in flight count against the account's lockout; this test is about hashing alone.
    settings = make_settings(clean_database, login_max_failures=100)
    pool = create_pool(clean_database, min_size=2, max_size=6, timeout=5.0)
    # One slow hash at a time and no queue: every login that overlaps another one is refused.
    hasher = BcryptHasher(12, concurrency=1, queue=0)
    services = build_services(settings, pool, hasher=hasher)
    with TestClient(create_app(settings, services=services)) as busy:
        busy.blocking_portal.call(partial(open_pool, pool, wait=True, timeout=5.0))
        try:
            register(busy, "alice@example.com")
            storm = 6
            start = threading.Barrier(storm + 1)
            answers: list[tuple[httpx.Response, float]] = []
            lock = threading.Lock()

            def attempt() -> None:
                start.wait()
                response = login(busy, "alice@example.com")
                with lock:
                    answers.append((response, time.monotonic()))

            threads = [threading.Thread(target=attempt) for _ in range(storm)]
            for thread in threads:
                thread.start()
            start.wait()
            time.sleep(0.05)
            health = busy.get("/health")
            health_answered = time.monotonic()
            for thread in threads:
                thread.join(timeout=30)

            assert health.status_code == 200
            assert health.json() == {"status": "healthy", "database": "ok"}
            statuses = sorted(response.status_code for response, _ in answers)
            assert len(statuses) == storm
            assert set(statuses) <= {200, 503}, statuses
            assert 200 in statuses
            assert 503 in statuses
            for response, _ in answers:
                if response.status_code == 503:
                    assert_problem(response, 503, BUSY)
                    assert int(response.headers["retry-after"]) >= 1
                    assert response.headers["cache-control"] == "no-store"
            # /health answered while a hash was still running, not after the storm.
            assert health_answered < max(finished for _, finished in answers)

            # Once the storm is over, logins work again.
            log_in(busy, "alice@example.com")
        finally:
            busy.blocking_portal.call(pool.close)


# --- size limits ----------------------------------------------------------------------------

MAX_AUTHORIZATION = 8 * 1024


def padded_token(user_id: str, header_length: int) -> str:
    """A valid token whose `Authorization: Bearer <token>` value is exactly header_length."""
    prefix = len("Bearer ")
    for kid in range(4):
        pad = max(0, header_length * 3 // 4 - 400)
        while True:
            claims = standard_claims(user_id, pad="p" * pad)
            token = jwt.encode(claims, SECRET, algorithm="HS256", headers={"kid": "k" * kid})
            if prefix + len(token) == header_length:
                return token
            if prefix + len(token) > header_length:
                break
            pad += 1
    raise AssertionError(f"no token of length {header_length}")


def test_an_authorization_header_of_8_kib_is_read(client: Client, alice: Account) -> None:
    token = padded_token(alice.id, MAX_AUTHORIZATION)

    response = client.get("/api/auth/me", headers=bearer(token))

    assert response.status_code == 200, response.text


def test_an_authorization_header_over_8_kib_is_401_invalid_token(
    client: Client, alice: Account
) -> None:
    # A genuine, well-signed token: refused only for its size.
    token = padded_token(alice.id, MAX_AUTHORIZATION + 1)

    for path in ("/api/auth/me", "/api/tasks"):
        assert_problem(client.get(path, headers=bearer(token)), 401, "Invalid token")
    assert_problem(client.post("/api/auth/logout", headers=bearer(token)), 401, "Invalid token")
    huge = "Bearer " + "a" * (64 * 1024)
    assert_problem(client.get("/api/auth/me", headers={"Authorization": huge}), 401)


def test_a_body_of_exactly_one_mebibyte_is_read(client: Client, alice: Account) -> None:
    body = b'{"title": "Big", "ignored": "' + b"x" * (1024 * 1024) + b'"}'
    body = body[: 1024 * 1024 - 2] + b'"}'
    assert len(body) == 1024 * 1024

    response = client.post(
        "/api/tasks",
        content=body,
        headers={**alice.headers, "content-type": "application/json"},
    )

    assert response.status_code == 201, response.text[:300]
    assert assert_task(response.json())["title"] == "Big"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/tasks"),
        ("POST", "/api/auth/login"),
        ("POST", "/api/auth/register"),
        ("POST", "/api/auth/password"),
        ("DELETE", "/api/auth/me"),
    ],
)
def test_a_body_over_one_mebibyte_is_413(
    client: Client, alice: Account, method: str, path: str
) -> None:
    body = b'{"title": "' + b"x" * (1024 * 1024) + b'"}'

    response = client.request(
        method, path, content=body, headers={**alice.headers, "content-type": "application/json"}
    )

    assert_problem(response, 413)
    # Nothing was created.
    listing = client.get("/api/tasks", headers=alice.headers)
    assert listing.json()["total"] == 0


def test_a_streamed_body_over_one_mebibyte_without_a_length_is_413(
    client: Client, alice: Account
) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"title": "'
        for _ in range(17):
            yield b"x" * 65536
        yield b'"}'

    response = client.post(
        "/api/tasks",
        content=chunks(),
        headers={**alice.headers, "content-type": "application/json"},
    )

    assert_problem(response, 413)


def test_a_page_over_1000_is_422_and_1000_is_fine(client: Client, alice: Account) -> None:
    response = client.get("/api/tasks", params={"limit": 1001}, headers=alice.headers)

    assert "limit" in error_fields(response)
    ok = client.get("/api/tasks", params={"limit": 1000}, headers=alice.headers)
    assert ok.status_code == 200
    assert ok.json()["limit"] == 1000


# --- token rules ----------------------------------------------------------------------------


def me_with(client: Client, claims: dict[str, Any], secret: str = SECRET) -> httpx.Response:
    return client.get("/api/auth/me", headers=bearer(mint(claims, secret=secret)))


def test_a_token_not_valid_before_a_future_time_is_refused(client: Client, alice: Account) -> None:
    now = int(time.time())

    refused = me_with(client, standard_claims(alice.id, nbf=now + 3600))

    assert_problem(refused, 401, "Invalid token")
    assert me_with(client, standard_claims(alice.id, nbf=now - 60)).status_code == 200


def test_a_token_issued_in_the_future_beyond_the_leeway_is_refused(
    client: Client, alice: Account
) -> None:
    now = int(time.time())

    assert_problem(me_with(client, standard_claims(alice.id, iat=now + 120)), 401, "Invalid token")
    assert_problem(
        me_with(client, standard_claims(alice.id, iat=now + 3000, exp=now + 9000)),
        401,
        "Invalid token",
    )


def test_the_leeway_forgives_a_few_seconds_of_clock_skew(client: Client, alice: Account) -> None:
    now = int(time.time())

    just_expired = me_with(client, standard_claims(alice.id, iat=now - 3600, exp=now - 10))
    slightly_ahead = me_with(client, standard_claims(alice.id, iat=now + 10))
    not_yet_by_a_little = me_with(client, standard_claims(alice.id, nbf=now + 10))

    assert just_expired.status_code == 200, just_expired.text
    assert slightly_ahead.status_code == 200, slightly_ahead.text
    assert not_yet_by_a_little.status_code == 200, not_yet_by_a_little.text
    # ...but no more than 30 seconds of it.
    long_expired = me_with(client, standard_claims(alice.id, iat=now - 3600, exp=now - 60))
    assert_problem(long_expired, 401, "Token expired")


def test_the_previous_secret_is_accepted_for_verification_only(
    client: Client, alice: Account, app_with: AppFactory
) -> None:
    rotating = app_with(previous_auth_secrets=(OLD_SECRET,))
    old_token = mint(standard_claims(alice.id), secret=OLD_SECRET)

    # The old secret is still honoured by an app that lists it...
    response = rotating.get("/api/auth/me", headers=bearer(old_token))
    assert response.status_code == 200, response.text
    assert_me(response.json(), email=alice.email)
    # ...and only by such an app.
    assert_problem(
        client.get("/api/auth/me", headers=bearer(old_token)), 401, "Invalid token signature"
    )
    # New tokens are signed with the current secret only.
    new_token = log_in(rotating, alice.email, alice.password)
    assert jwt.decode(new_token, SECRET, algorithms=["HS256"])["sub"] == alice.id
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(new_token, OLD_SECRET, algorithms=["HS256"])
    assert rotating.get("/api/auth/me", headers=bearer(new_token)).status_code == 200
    # A secret that is neither current nor previous is refused.
    assert_problem(
        me_with(rotating, standard_claims(alice.id), secret=OTHER_SECRET),
        401,
        "Invalid token signature",
    )


def test_a_previous_secret_token_can_be_logged_out(alice: Account, app_with: AppFactory) -> None:
    rotating = app_with(previous_auth_secrets=(OLD_SECRET,))
    old_token = mint(standard_claims(alice.id), secret=OLD_SECRET)

    assert rotating.post("/api/auth/logout", headers=bearer(old_token)).status_code == 200

    assert_problem(rotating.get("/api/auth/me", headers=bearer(old_token)), 401, "Token revoked")


# --- logout everywhere ----------------------------------------------------------------------


def test_logout_all_revokes_every_earlier_token_of_the_caller_only(
    client: Client, alice: Account, bob: Account
) -> None:
    second_device = log_in(client, alice.email, alice.password)
    # Minted within the second of the logout-all: its whole-second iat cannot say it came after.
    frontend_token = mint(standard_claims(alice.id))

    # At once, with no pause: the cut-off does not wait for the clock to tick.
    response = client.post("/api/auth/logout-all", headers=alice.headers)

    assert response.status_code == 200
    assert response.json() == {"message": "Logged out everywhere"}
    assert response.headers["cache-control"] == "no-store"
    for token in (alice.token, second_device, frontend_token):
        for path in ("/api/auth/me", "/api/tasks"):
            assert_problem(client.get(path, headers=bearer(token)), 401, "Token revoked")
    # Other people are not logged out.
    assert client.get("/api/auth/me", headers=bob.headers).status_code == 200
    # Alice can log in again at once, and the new token works.
    fresh = log_in(client, alice.email, alice.password)
    assert client.get("/api/auth/me", headers=bearer(fresh)).status_code == 200
    assert me_with(client, standard_claims(alice.id, iat=int(time.time()) + 1)).status_code == 200


def test_logout_all_needs_a_valid_token(client: Client, alice: Account) -> None:
    assert_problem(client.post("/api/auth/logout-all"), 401, "Not authenticated")
    assert_problem(
        client.post("/api/auth/logout-all", headers=bearer("not-a-token")), 401, "Invalid token"
    )
    # Nothing was revoked.
    assert client.get("/api/auth/me", headers=alice.headers).status_code == 200


# --- deleting the account -------------------------------------------------------------------


def test_deleting_the_account_with_a_wrong_password_is_401_and_deletes_nothing(
    client: Client, alice: Account, clean_database: str
) -> None:
    create_task(client, alice)

    response = delete_account(client, alice.headers, {"password": WRONG_PASSWORD})

    assert_problem(response, 401, "Invalid password")
    assert response.headers["cache-control"] == "no-store"
    assert client.get("/api/auth/me", headers=alice.headers).status_code == 200
    assert count_rows(clean_database, "SELECT count(*) FROM users WHERE id = %s", alice.id) == 1
    assert count_rows(clean_database, "SELECT count(*) FROM tasks WHERE user_id = %s", alice.id)


def test_deleting_the_account_removes_it_and_its_tasks(
    client: Client, alice: Account, bob: Account, clean_database: str
) -> None:
    for n in range(3):
        create_task(client, alice, title=f"Alice's {n}")
    bobs = create_task(client, bob)

    response = delete_account(client, alice.headers, {"password": alice.password})

    assert response.status_code == 204
    assert response.content == b""
    assert count_rows(clean_database, "SELECT count(*) FROM users WHERE id = %s", alice.id) == 0
    tasks_left = "SELECT count(*) FROM tasks WHERE user_id = %s"
    assert count_rows(clean_database, tasks_left, alice.id) == 0
    assert_problem(client.get("/api/auth/me", headers=alice.headers), 401, "User not found")
    assert_problem(client.get("/api/tasks", headers=alice.headers), 401, "User not found")
    assert_problem(login(client, alice.email, alice.password), 401, "Invalid email or password")
    # Bob keeps his account and his task.
    assert client.get(f"/api/tasks/{bobs['id']}", headers=bob.headers).status_code == 200
    # The email is free again.
    register(client, alice.email, NEW_PASSWORD)


def test_deleting_the_account_without_a_body_is_400(client: Client, alice: Account) -> None:
    assert_problem(client.delete("/api/auth/me", headers=alice.headers), 400)
    assert client.get("/api/auth/me", headers=alice.headers).status_code == 200


def test_deleting_the_account_without_the_password_field_is_422(
    client: Client, alice: Account
) -> None:
    response = delete_account(client, alice.headers, {})

    assert_problem(response, 422)
    assert "password" in error_fields(response)
    assert client.get("/api/auth/me", headers=alice.headers).status_code == 200


def test_deleting_the_account_needs_a_token(client: Client, alice: Account) -> None:
    response = delete_account(client, {}, {"password": alice.password})

    assert_problem(response, 401, "Not authenticated")
    log_in(client, alice.email, alice.password)


# --- changing the password ------------------------------------------------------------------


def test_changing_the_password_revokes_older_tokens_and_answers_a_fresh_one(
    client: Client, alice: Account, bob: Account
) -> None:
    other_device = log_in(client, alice.email, alice.password)

    response = change_password(client, alice.headers, alice.password, NEW_PASSWORD)

    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "user"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 86400
    assert_user(body["user"], email=alice.email)
    assert body["user"]["id"] == alice.id
    fresh = body["access_token"]
    assert client.get("/api/auth/me", headers=bearer(fresh)).status_code == 200
    for token in (alice.token, other_device):
        assert_problem(client.get("/api/auth/me", headers=bearer(token)), 401, "Token revoked")
    assert client.get("/api/auth/me", headers=bob.headers).status_code == 200
    assert_problem(login(client, alice.email, alice.password), 401, "Invalid email or password")
    log_in(client, alice.email, NEW_PASSWORD)


def test_changing_the_password_with_a_wrong_current_password_is_401(
    client: Client, alice: Account
) -> None:
    response = change_password(client, alice.headers, WRONG_PASSWORD, NEW_PASSWORD)

    assert_problem(response, 401, "Invalid password")
    assert client.get("/api/auth/me", headers=alice.headers).status_code == 200
    log_in(client, alice.email, alice.password)
    assert_problem(login(client, alice.email, NEW_PASSWORD), 401)


@pytest.mark.parametrize("weak", ["password123", "qwertyuiop", "alice@example.com"])
def test_changing_to_a_weak_password_is_422_with_advice(
    client: Client, alice: Account, weak: str
) -> None:
    response = change_password(client, alice.headers, alice.password, weak)

    body = assert_problem(response, 422, WEAK)
    messages = [e["message"] for e in body["errors"] if e["field"] == "new_password"]
    assert messages
    feedback = zxcvbn(weak, user_inputs=[alice.email])["feedback"]
    for advice in [feedback["warning"], *feedback["suggestions"]]:
        assert advice in messages[0]
    log_in(client, alice.email, alice.password)
    assert client.get("/api/auth/me", headers=alice.headers).status_code == 200


@pytest.mark.parametrize(("new", "field"), [("Qz7#", "new_password"), ("x" * 129, "new_password")])
def test_changing_to_a_password_of_a_bad_length_is_422(
    client: Client, alice: Account, new: str, field: str
) -> None:
    response = change_password(client, alice.headers, alice.password, new)

    assert_problem(response, 422)
    assert field in error_fields(response)
    log_in(client, alice.email, alice.password)


def test_changing_the_password_with_a_missing_field_is_422(client: Client, alice: Account) -> None:
    response = client.post(
        "/api/auth/password", json={"new_password": NEW_PASSWORD}, headers=alice.headers
    )

    assert "current_password" in error_fields(response)


# --- weak passwords at registration ---------------------------------------------------------


@pytest.mark.parametrize(
    ("email", "weak"),
    [
        ("ada@example.com", "password123"),
        ("ada@example.com", "qwertyuiop"),
        # Strong in itself (zxcvbn score 4), but it is the email: weak for this account.
        ("xkcdvortex@example.org", "xkcdvortex@example.org"),
        ("xkcdvortex@example.org", "Xkcdvortex@Example.org"),
    ],
)
def test_registering_with_a_weak_password_is_422_with_zxcvbn_advice(
    client: Client, email: str, weak: str
) -> None:
    response = client.post("/api/auth/register", json={"email": email, "password": weak})

    body = assert_problem(response, 422, WEAK)
    messages = [e["message"] for e in body["errors"] if e["field"] == "password"]
    assert messages
    feedback = zxcvbn(weak, user_inputs=[email])["feedback"]
    for advice in [feedback["warning"], *feedback["suggestions"]]:
        assert advice in messages[0]
    assert_problem(login(client, email, weak), 401, "Invalid email or password")


# --- security headers -----------------------------------------------------------------------

Request = Callable[[Client, Account], httpx.Response]


def _preflight(path: str) -> Request:
    def send(client: Client, account: Account) -> httpx.Response:
        return client.options(
            path,
            headers={"Origin": FRONTEND_ORIGIN, "Access-Control-Request-Method": "POST"},
        )

    return send


def _delete_task(client: Client, account: Account) -> httpx.Response:
    task = create_task(client, account)
    return client.delete(f"/api/tasks/{task['id']}", headers=account.headers)


EVERY_KIND_OF_RESPONSE: dict[str, tuple[int, Request]] = {
    "200 health": (200, lambda c, a: c.get("/health")),
    "200 list": (200, lambda c, a: c.get("/api/tasks", headers=a.headers)),
    "201 task": (201, lambda c, a: c.post("/api/tasks", json={"title": "T"}, headers=a.headers)),
    "204 delete": (204, _delete_task),
    "401": (401, lambda c, a: c.get("/api/tasks")),
    "404 route": (404, lambda c, a: c.get("/nowhere")),
    "404 task": (
        404,
        lambda c, a: c.get("/api/tasks/00000000-0000-4000-8000-000000000000", headers=a.headers),
    ),
    "405": (405, lambda c, a: c.delete("/health")),
    "422": (422, lambda c, a: c.get("/api/tasks?limit=0", headers=a.headers)),
    "400": (
        400,
        lambda c, a: c.post(
            "/api/tasks",
            content=b"{",
            headers={**a.headers, "content-type": "application/json"},
        ),
    ),
    "preflight": (204, _preflight("/api/tasks")),
    "openapi": (200, lambda c, a: c.get("/schema/openapi.json")),
}


@pytest.mark.parametrize("case", list(EVERY_KIND_OF_RESPONSE))
def test_every_response_carries_nosniff(client: Client, alice: Account, case: str) -> None:
    status, send = EVERY_KIND_OF_RESPONSE[case]

    response = send(client, alice)

    assert response.status_code == status, response.text
    assert response.headers.get("x-content-type-options") == "nosniff"


AUTH_RESPONSES: dict[str, tuple[int, Request]] = {
    "register 201": (
        201,
        lambda c, a: c.post(
            "/api/auth/register", json={"email": "new@example.com", "password": PASSWORD}
        ),
    ),
    "register 409": (
        409,
        lambda c, a: c.post("/api/auth/register", json={"email": a.email, "password": PASSWORD}),
    ),
    "register 422": (422, lambda c, a: c.post("/api/auth/register", json={"email": "x"})),
    "register 400": (
        400,
        lambda c, a: c.post(
            "/api/auth/register", content=b"{", headers={"content-type": "application/json"}
        ),
    ),
    "login 200": (200, lambda c, a: login(c, a.email, a.password)),
    "login 401": (401, lambda c, a: login(c, a.email, WRONG_PASSWORD)),
    "me 200": (200, lambda c, a: c.get("/api/auth/me", headers=a.headers)),
    "me 401": (401, lambda c, a: c.get("/api/auth/me")),
    "logout 200": (200, lambda c, a: c.post("/api/auth/logout", headers=a.headers)),
    "logout 401": (401, lambda c, a: c.post("/api/auth/logout", headers=bearer("x.y.z"))),
    "logout-all 200": (200, lambda c, a: c.post("/api/auth/logout-all", headers=a.headers)),
    "password 200": (200, lambda c, a: change_password(c, a.headers, a.password, NEW_PASSWORD)),
    "password 401": (
        401,
        lambda c, a: change_password(c, a.headers, WRONG_PASSWORD, NEW_PASSWORD),
    ),
    "password 422": (422, lambda c, a: change_password(c, a.headers, a.password, "password1")),
    "delete 204": (204, lambda c, a: delete_account(c, a.headers, {"password": a.password})),
    "delete 401": (401, lambda c, a: delete_account(c, a.headers, {"password": WRONG_PASSWORD})),
    "405": (405, lambda c, a: c.get("/api/auth/login")),
    "404": (404, lambda c, a: c.get("/api/auth/nowhere")),
    "preflight": (204, _preflight("/api/auth/login")),
}


@pytest.mark.parametrize("case", list(AUTH_RESPONSES))
def test_every_auth_response_carries_no_store_and_nosniff(
    client: Client, alice: Account, case: str
) -> None:
    status, send = AUTH_RESPONSES[case]

    response = send(client, alice)

    assert response.status_code == status, response.text
    assert response.headers.get("cache-control") == "no-store"
    assert response.headers.get("x-content-type-options") == "nosniff"


# --- CORS -----------------------------------------------------------------------------------


def assert_no_wildcard_with_credentials(response: httpx.Response, origin: str) -> None:
    allowed = response.headers.get("access-control-allow-origin")
    credentials = response.headers.get("access-control-allow-credentials", "").lower()
    assert not (allowed == "*" and credentials == "true"), response.headers
    if credentials == "true":
        assert allowed == origin


def cors_requests(client: Client, account: Account, origin: str) -> list[httpx.Response]:
    return [
        client.get("/api/tasks", headers={**account.headers, "Origin": origin}),
        client.post(
            "/api/auth/login",
            json={"email": account.email, "password": account.password},
            headers={"Origin": origin},
        ),
        client.options(
            "/api/tasks",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "Authorization, Content-Type",
            },
        ),
    ]


def test_cors_answers_the_configured_origin_by_name_never_a_wildcard(
    client: Client, alice: Account
) -> None:
    for response in cors_requests(client, alice, FRONTEND_ORIGIN):
        assert response.status_code in (200, 204), response.text
        assert response.headers["access-control-allow-origin"] == FRONTEND_ORIGIN
        assert_no_wildcard_with_credentials(response, FRONTEND_ORIGIN)


def test_cors_allows_no_origin_outside_the_configuration(client: Client, alice: Account) -> None:
    responses = cors_requests(client, alice, "https://evil.example")

    for response in responses:
        assert "access-control-allow-origin" not in response.headers, response.headers
    assert_problem(responses[-1], 400)


def test_a_wildcard_origin_never_comes_with_credentials(app_with: AppFactory) -> None:
    anyone = app_with(cors_origins=("*",))
    account = Account(anyone, "alice@example.com")
    origin = "https://anywhere.example"

    for response in cors_requests(anyone, account, origin):
        assert response.status_code in (200, 204), response.text
        assert response.headers.get("access-control-allow-origin") in ("*", origin)
        assert_no_wildcard_with_credentials(response, origin)


# --- secrets stay out of logs and error bodies ----------------------------------------------

BCRYPT_HASH = re.compile(r"\$2[abxy]?\$\d{2}\$[./A-Za-z0-9]{20,}")
CAPTURED_LOGGERS = ("", "litestar", "psycopg", "psycopg.pool", "todo_api", "uvicorn")


class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _text_of(record: logging.LogRecord) -> str:
    parts = [str(value) for value in vars(record).values()]
    try:
        parts.append(record.getMessage())
    except Exception as error:  # a record whose arguments do not fit its message
        parts.append(repr(error))
    parts.append(repr(record.args))
    if record.exc_info:
        parts.append(logging.Formatter().formatException(record.exc_info))
    parts.append(record.exc_text or "")
    parts.append(record.stack_info or "")
    return "\n".join(parts)


@contextmanager
def every_log_record(caplog: pytest.LogCaptureFixture) -> Iterator[list[logging.LogRecord]]:
    """Every record of the block, at every level: through caplog on the root logger, and
    through a handler on each logger of interest in case it does not propagate (Litestar's
    own does not). Install it after creating the app: creating one configures logging anew."""
    collector = _Collector()
    loggers = [logging.getLogger(name) for name in CAPTURED_LOGGERS]
    levels = [logger.level for logger in loggers]
    root = logging.getLogger()
    readded = caplog.handler not in root.handlers
    if readded:  # the app's logging configuration replaced the root logger's handlers
        root.addHandler(caplog.handler)
    for logger in loggers:
        caplog.set_level(logging.DEBUG, logger=logger.name)
        logger.addHandler(collector)
    records: list[logging.LogRecord] = []
    try:
        yield records
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(collector)
            logger.setLevel(level)
        if readded:
            root.removeHandler(caplog.handler)
        unique = {id(record): record for record in [*caplog.records, *collector.records]}
        records.extend(unique.values())


def test_no_password_token_or_hash_is_ever_logged_or_answered(
    clean_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    email = "alice@example.com"
    password = "Secret-Otter-5531-Harbor"
    weak = "password1234"
    secrets: list[str] = [password, NEW_PASSWORD, WRONG_PASSWORD, weak]
    failures: list[httpx.Response] = []

    def expect(response: httpx.Response, status: int) -> httpx.Response:
        assert response.status_code == status, response.text
        if status >= 400:
            failures.append(response)
        return response

    def stored_hash() -> str:
        with psycopg.connect(clean_database) as connection:
            row = connection.execute(
                "SELECT password_hash FROM users WHERE email = %s", (email,)
            ).fetchone()
        assert row is not None
        value: str = row[0]
        assert BCRYPT_HASH.search(value)
        return value

    app = create_app(make_settings(clean_database))
    with every_log_record(caplog) as records, TestClient(app) as client:
        for name in CAPTURED_LOGGERS:
            logging.getLogger(name).debug("capture is on for %r", name)
        expect(client.post("/api/auth/register", json={"email": email, "password": weak}), 422)
        expect(
            client.post(
                "/api/auth/register",
                content=f'{{"email": "{email}", "password": "{password}'.encode(),
                headers={"content-type": "application/json"},
            ),
            400,
        )
        user_id = expect(
            client.post("/api/auth/register", json={"email": email, "password": password}),
            201,
        ).json()["id"]
        expect(
            client.post("/api/auth/register", json={"email": email, "password": password}),
            409,
        )
        secrets.append(stored_hash())
        expect(login(client, email, WRONG_PASSWORD), 401)
        expect(login(client, "nobody@example.com", password), 401)
        first = expect(login(client, email, password), 200).json()["access_token"]
        secrets.append(first)
        headers = bearer(first)
        expect(client.post("/api/tasks", json={"title": "Private"}, headers=headers), 201)
        tampered = first[:-4] + ("AAAA" if not first.endswith("AAAA") else "BBBB")
        forged = mint(standard_claims(user_id), secret=OTHER_SECRET)
        secrets += [tampered, forged]
        for bad in (tampered, forged, "not-a-jwt", first + "x"):
            expect(client.get("/api/tasks", headers=bearer(bad)), 401)
        expect(client.post("/api/auth/logout", headers=headers), 200)
        expect(client.get("/api/tasks", headers=headers), 401)  # revoked
        second = expect(login(client, email, password), 200).json()["access_token"]
        secrets.append(second)
        headers = bearer(second)
        expect(change_password(client, headers, WRONG_PASSWORD, NEW_PASSWORD), 401)
        expect(change_password(client, headers, password, weak), 422)
        expect(change_password(client, headers, password, "short"), 422)
        third = expect(change_password(client, headers, password, NEW_PASSWORD), 200).json()[
            "access_token"
        ]
        secrets.append(third)
        secrets.append(stored_hash())
        headers = bearer(third)
        expect(delete_account(client, headers, {"password": WRONG_PASSWORD}), 401)
        expect(delete_account(client, headers, {"password": password}), 401)
        expect(delete_account(client, headers, {"password": NEW_PASSWORD}), 204)
        expect(client.get("/api/auth/me", headers=headers), 401)  # user not found
        expect(login(client, email, NEW_PASSWORD), 401)

    texts = [_text_of(record) for record in records]
    for name in CAPTURED_LOGGERS:  # the capture works, for each logger
        assert any(f"capture is on for {name!r}" in text for text in texts), name
    # Each token's signature alone would be a leak too.
    needles = [*secrets, *(token.rsplit(".", 1)[-1] for token in (first, second, third))]
    for text in texts:
        for secret in needles:
            assert secret not in text
        assert not BCRYPT_HASH.search(text), text
    assert len(failures) >= 15
    for response in failures:
        assert response.headers["content-type"].startswith("application/problem+json")
        for secret in needles:
            assert secret not in response.text
        assert not BCRYPT_HASH.search(response.text), response.text
