"""Issue 5 over HTTP: ETags with If-Match / If-None-Match, Idempotency-Key, keyset paging,
request ids, the request log, liveness, metrics, and overload answered with 503."""

import base64
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, ExitStack, contextmanager
from datetime import datetime
from typing import Any
from uuid import uuid4

import httpx
import psycopg
import pytest
from litestar.testing import TestClient
from prometheus_client.parser import text_string_to_metric_families

from domain.queries import TaskPosition, TaskQuery
from entrypoints.http.app import create_app
from entrypoints.http.schemas import encode_cursor
from entrypoints.logs import configure_logging
from tests.http.support import (
    METRICS_TOKEN,
    PASSWORD,
    Account,
    Client,
    assert_problem,
    assert_task,
    bearer,
    create_task,
    error_fields,
    make_settings,
    mint,
    standard_claims,
)

UNREACHABLE_DATABASE = "postgresql://postgres@127.0.0.1:1/x"
CHANGED = "The task has changed since the version in If-Match"
KEY_REUSED = "Idempotency-Key was already used with a different request"
BUSY = "The server is busy; retry shortly"
# RFC 9110 8.8.3: a strong entity tag is a quoted string of etagc characters.
STRONG_ETAG = re.compile(r'"[\x21\x23-\x7e]+"')
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")
WAIT_SECONDS = 10.0
SOME_ID = "6f1c2a9e-3b7d-4e15-9a0c-2d8f4b6e1a57"

AppFactory = Callable[..., Client]


# --- helpers --------------------------------------------------------------------------------


@pytest.fixture
def app_with(clean_database: str) -> Iterator[AppFactory]:
    """More apps over the test's (emptied) database, each with its own settings and pool."""
    with ExitStack() as stack:

        def make(**overrides: Any) -> Client:
            app = create_app(make_settings(clean_database, **overrides))
            return stack.enter_context(TestClient(app))

        yield make


@pytest.fixture(scope="module")
def unreachable() -> Iterator[Client]:
    """An app whose database does not answer; requests that need it give up after 0.5 s."""
    settings = make_settings(UNREACHABLE_DATABASE, pool_timeout_seconds=0.5)
    with TestClient(create_app(settings)) as client:
        yield client


def etag_of(response: httpx.Response) -> str:
    value = response.headers.get("etag")
    assert value is not None, (response.status_code, response.headers)
    assert STRONG_ETAG.fullmatch(value), value
    return value


def task_url(task: dict[str, Any]) -> str:
    return f"/api/tasks/{task['id']}"


def with_header(account: Account, name: str, value: str | bytes) -> dict[str, Any]:
    return {**account.headers, name: value}


def total_of(client: Client, account: Account) -> int:
    response = client.get("/api/tasks", headers=account.headers)
    assert response.status_code == 200, response.text
    total = response.json()["total"]
    assert isinstance(total, int)
    return total


def query(url: str, statement: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as connection:
        cursor = connection.execute(statement, params)
        return cursor.fetchall() if cursor.description is not None else []


@contextmanager
def holding(url: str, statement: str, params: Any = None) -> Iterator[None]:
    """Runs `statement` (a lock) in a transaction of its own, kept open for the block."""
    with psycopg.connect(url) as connection:
        connection.execute(statement, params)
        try:
            yield
        finally:
            connection.rollback()


def holding_row(url: str, task_id: str) -> AbstractContextManager[None]:
    """The task's row locked for the block, as a writer in the middle of a change holds it."""
    return holding(url, "SELECT 1 FROM tasks WHERE id = %s FOR UPDATE", (task_id,))


def lock_waiters(url: str) -> int:
    ((waiting,),) = query(
        url,
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE wait_event_type = 'Lock' AND datname = current_database()",
    )
    return int(waiting)


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def wait_for_lock_waiters(url: str, count: int) -> None:
    """Until exactly `count` of the app's sessions wait for a lock the test holds."""
    wait_until(lambda: lock_waiters(url) >= count, f"{count} lock waiters")
    assert lock_waiters(url) == count


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: Client, token: str = METRICS_TOKEN) -> Samples:
    response = client.get("/metrics", headers=bearer(token))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value_of(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total_value(samples: Samples, name: str) -> float:
    return sum(value for (sample, _), value in samples.items() if sample == name)


def b64(text: bytes) -> str:
    return base64.urlsafe_b64encode(text).decode().rstrip("=")


# --- ETags ------------------------------------------------------------------------------------


def test_every_task_answer_carries_an_etag_that_changes_on_every_update(
    client: Client, alice: Account
) -> None:
    created = client.post("/api/tasks", json={"title": "v1"}, headers=alice.headers)
    assert created.status_code == 201
    task = assert_task(created.json())
    tags = [etag_of(created)]
    fetched = client.get(task_url(task), headers=alice.headers)
    assert fetched.status_code == 200
    assert etag_of(fetched) == tags[0]

    # The same change each time: the version moves forward all the same.
    for method in ("PUT", "PATCH", "PATCH", "PUT", "PATCH"):
        updated = client.request(
            method, task_url(task), json={"completed": True}, headers=alice.headers
        )
        assert updated.status_code == 200, updated.text
        tags.append(etag_of(updated))
        assert etag_of(client.get(task_url(task), headers=alice.headers)) == tags[-1]

    assert len(set(tags)) == len(tags), tags


def test_get_with_if_none_match_naming_the_current_version_is_304_without_a_body(
    client: Client, alice: Account
) -> None:
    task = client.post("/api/tasks", json={"title": "cached"}, headers=alice.headers)
    tag = etag_of(task)
    url = task_url(task.json())

    for if_none_match in (tag, f'"1", {tag}', f"W/{tag}", "*"):
        response = client.get(url, headers=with_header(alice, "If-None-Match", if_none_match))

        assert response.status_code == 304, (if_none_match, response.text)
        assert response.content == b""
        assert etag_of(response) == tag


@pytest.mark.parametrize(
    "if_none_match",
    ['"1"', '"garbage"', "garbage", '""', b'"\xb2"', "W/", ","],
    ids=["other", "quoted-word", "bare", "empty-tag", "superscript-two", "weak-nothing", "comma"],
)
def test_get_with_if_none_match_naming_another_version_is_200(
    client: Client, alice: Account, if_none_match: str | bytes
) -> None:
    created = client.post("/api/tasks", json={"title": "cached"}, headers=alice.headers)
    url = task_url(created.json())

    response = client.get(url, headers=with_header(alice, "If-None-Match", if_none_match))

    assert response.status_code == 200, response.text
    assert response.json() == created.json()
    assert etag_of(response) == etag_of(created)


def test_get_with_a_stale_if_none_match_is_200_with_the_new_version(
    client: Client, alice: Account
) -> None:
    created = client.post("/api/tasks", json={"title": "old"}, headers=alice.headers)
    stale = etag_of(created)
    url = task_url(created.json())
    updated = client.patch(url, json={"title": "new"}, headers=alice.headers)
    assert updated.status_code == 200

    response = client.get(url, headers=with_header(alice, "If-None-Match", stale))

    assert response.status_code == 200
    assert response.json() == updated.json()
    assert etag_of(response) == etag_of(updated) != stale


def _send(
    client: Client, method: str, url: str, headers: dict[str, Any], title: str = "changed"
) -> httpx.Response:
    body = None if method == "DELETE" else {"title": title}
    return client.request(method, url, json=body, headers=headers)


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("form", ["current", "in-a-list", "star"])
def test_a_write_with_a_matching_if_match_succeeds(
    client: Client, alice: Account, method: str, form: str
) -> None:
    created = client.post("/api/tasks", json={"title": "original"}, headers=alice.headers)
    tag = etag_of(created)
    url = task_url(created.json())
    if_match = {"current": tag, "in-a-list": f'"1", {tag}', "star": "*"}[form]

    response = _send(client, method, url, with_header(alice, "If-Match", if_match))

    if method == "DELETE":
        assert response.status_code == 204, response.text
        assert response.content == b""
        assert_problem(client.get(url, headers=alice.headers), 404, "Task not found")
    else:
        assert response.status_code == 200, response.text
        assert response.json()["title"] == "changed"
        assert etag_of(response) != tag
        assert client.get(url, headers=alice.headers).json() == response.json()


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_a_write_with_a_stale_if_match_is_412_and_changes_nothing(
    client: Client, alice: Account, method: str
) -> None:
    created = client.post("/api/tasks", json={"title": "original"}, headers=alice.headers)
    stale = etag_of(created)
    url = task_url(created.json())
    current = client.patch(url, json={"completed": True}, headers=alice.headers)
    assert current.status_code == 200

    response = _send(client, method, url, with_header(alice, "If-Match", stale))

    assert_problem(response, 412, CHANGED)
    unchanged = client.get(url, headers=alice.headers)
    assert unchanged.status_code == 200
    assert unchanged.json() == current.json()
    assert etag_of(unchanged) == etag_of(current)


# If-Match values that name no version this API gave out, or name it only weakly; DIGITS
# stands for the digits of the task's current ETag.
NEVER_MATCHING = [
    pytest.param('W/"DIGITS"', id="weak-current"),  # weak tags never match a strong comparison
    pytest.param('W/"DIGITS", W/"1"', id="weak-list"),
    pytest.param("DIGITS", id="unquoted-current"),
    pytest.param('"DIGITS', id="unterminated"),
    pytest.param('"DIGITS0"', id="trailing-zero"),
    pytest.param('" DIGITS"', id="inner-space"),
    pytest.param('"+DIGITS"', id="plus-sign"),
    pytest.param('"DIGITS.0"', id="decimal"),
    pytest.param('""', id="empty-tag"),
    pytest.param('"', id="lone-quote"),
    pytest.param("", id="empty"),
    pytest.param(",", id="comma"),
    pytest.param(", ,", id="commas"),
    pytest.param("**", id="two-stars"),
    pytest.param('"*"', id="quoted-star"),
    pytest.param('"-1"', id="negative"),
    pytest.param('"0"', id="epoch"),
    pytest.param('"1e5"', id="exponent"),
    pytest.param('"0x10"', id="hex"),
    pytest.param('"abc"', id="word"),
    pytest.param('"' + "9" * 18 + '"', id="18-nines"),  # beyond any date
    pytest.param('"' + "9" * 19 + '"', id="19-nines"),
    pytest.param('"' + "9" * 400 + '"', id="400-nines"),
    pytest.param('"\u0661\u0662\u0663"'.encode(), id="arabic-indic-utf8"),
    pytest.param(b'"\xb2"', id="superscript-two-latin1"),  # "²": isdigit() yes, int() no
    pytest.param(b'"\xb9\xb2\xb3"', id="superscripts-latin1"),
    pytest.param(b'"1\xb2"', id="one-squared-latin1"),
    pytest.param(b'"\xbd"', id="one-half-latin1"),
]


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("if_match", NEVER_MATCHING)
def test_an_if_match_naming_no_version_is_412_never_500(
    client: Client, alice: Account, method: str, if_match: str | bytes
) -> None:
    created = client.post("/api/tasks", json={"title": "original"}, headers=alice.headers)
    url = task_url(created.json())
    if isinstance(if_match, str):
        if_match = if_match.replace("DIGITS", etag_of(created).strip('"'))

    response = _send(client, method, url, with_header(alice, "If-Match", if_match))

    assert_problem(response, 412, CHANGED)
    assert client.get(url, headers=alice.headers).json() == created.json()


def test_if_match_compares_tags_character_by_character(client: Client, alice: Account) -> None:
    """RFC 9110 8.8.3.2: a strong comparison matches opaque-tags character by character, so
    "0123" is not "123" even though both spell the same number."""
    created = client.post("/api/tasks", json={"title": "original"}, headers=alice.headers)
    url = task_url(created.json())
    padded = '"0' + etag_of(created).strip('"') + '"'

    response = client.patch(
        url, json={"title": "x"}, headers=with_header(alice, "If-Match", padded)
    )

    assert_problem(response, 412, CHANGED)
    assert client.get(url, headers=alice.headers).json() == created.json()


def test_without_if_match_writes_are_unconditional_as_the_contract_says(
    client: Client, alice: Account
) -> None:
    task = create_task(client, alice, title="first")
    url = task_url(task)
    other_tab = client.patch(url, json={"completed": True}, headers=alice.headers)
    assert other_tab.status_code == 200

    put = client.put(url, json={"title": "second"}, headers=alice.headers)
    patch = client.patch(url, json={"description": "d"}, headers=alice.headers)

    assert put.status_code == 200
    assert patch.status_code == 200
    assert {k: patch.json()[k] for k in ("title", "description", "completed")} == {
        "title": "second",
        "description": "d",
        "completed": True,
    }
    assert client.delete(url, headers=alice.headers).status_code == 204


def test_two_partial_updates_at_once_without_if_match_keep_both_changes(
    client: Client, alice: Account, clean_database: str
) -> None:
    """Without If-Match, two tabs changing different fields at the same moment: PATCH leaves
    absent fields unchanged, so neither may undo the other's acknowledged change."""
    created = client.post("/api/tasks", json={"title": "old title"}, headers=alice.headers)
    url = task_url(created.json())

    with ThreadPoolExecutor(2) as pool:
        with holding_row(clean_database, created.json()["id"]):
            renamed = pool.submit(
                client.patch, url, json={"title": "new title"}, headers=alice.headers
            )
            wait_for_lock_waiters(clean_database, 1)
            ticked = pool.submit(client.patch, url, json={"completed": True}, headers=alice.headers)
            wait_for_lock_waiters(clean_database, 2)
        answers = [renamed.result(timeout=30), ticked.result(timeout=30)]

    assert [answer.status_code for answer in answers] == [200, 200]
    after = client.get(url, headers=alice.headers).json()
    assert (after["title"], after["completed"]) == ("new title", True), after


def test_if_match_never_turns_a_404_or_403_into_a_412(
    client: Client, alice: Account, bob: Account
) -> None:
    """RFC 9110 13.2.1: preconditions are evaluated only when the request would otherwise
    succeed; a missing task is 404, another user's 403, whatever If-Match says."""
    bobs = client.post("/api/tasks", json={"title": "Bob's"}, headers=bob.headers)
    missing = f"/api/tasks/{uuid4()}"

    for method in ("PUT", "PATCH", "DELETE"):
        for if_match in (etag_of(bobs), '"1"', "*"):
            headers = with_header(alice, "If-Match", if_match)
            assert_problem(_send(client, method, missing, headers), 404, "Task not found")
            assert_problem(_send(client, method, task_url(bobs.json()), headers), 403)

    assert client.get(task_url(bobs.json()), headers=bob.headers).json() == bobs.json()
    own = client.post("/api/tasks", json={"title": "Alice's"}, headers=alice.headers)
    stale = _send(client, "PATCH", task_url(own.json()), with_header(alice, "If-Match", '"1"'))
    assert_problem(stale, 412, CHANGED)


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
def test_two_writers_with_the_same_if_match_at_once_one_wins_and_the_other_gets_412(
    client: Client, alice: Account, clean_database: str, method: str
) -> None:
    """Two tabs read the same version, then write at the same moment. The task's row is
    locked meanwhile, so both requests are waiting inside the database when it is released:
    a check made apart from the write would let both through."""
    created = client.post("/api/tasks", json={"title": "shared"}, headers=alice.headers)
    tag = etag_of(created)
    url = task_url(created.json())
    start = threading.Barrier(2)

    def write(title: str) -> httpx.Response:
        start.wait(timeout=WAIT_SECONDS)
        return _send(client, method, url, with_header(alice, "If-Match", tag), title)

    titles = ("first tab", "second tab")
    with ThreadPoolExecutor(2) as pool:
        with holding_row(clean_database, created.json()["id"]):
            futures = [pool.submit(write, title) for title in titles]
            wait_for_lock_waiters(clean_database, 2)
        answers = dict(zip(titles, (future.result(timeout=30) for future in futures), strict=True))

    statuses = sorted(response.status_code for response in answers.values())
    assert statuses == [200, 412], {t: r.text for t, r in answers.items()}
    (winner,) = (title for title, response in answers.items() if response.status_code == 200)
    (loser,) = (title for title, response in answers.items() if response.status_code == 412)
    assert_problem(answers[loser], 412, CHANGED)
    now = client.get(url, headers=alice.headers)
    assert now.json()["title"] == winner
    assert now.json() == answers[winner].json()
    assert etag_of(now) == etag_of(answers[winner])


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
def test_a_write_and_a_delete_with_the_same_if_match_at_once_the_delete_gets_412(
    client: Client, alice: Account, clean_database: str, method: str
) -> None:
    """Both requests are inside the database at once, the write queued for the task's row
    before the delete: the delete must not remove the version the write just made. (The other
    order, a write losing to a delete, is a 404 with or without If-Match: the task is gone.)"""
    created = client.post("/api/tasks", json={"title": "contested"}, headers=alice.headers)
    url = task_url(created.json())
    headers = with_header(alice, "If-Match", etag_of(created))

    with ThreadPoolExecutor(2) as pool:
        with holding_row(clean_database, created.json()["id"]):
            write = pool.submit(_send, client, method, url, headers, "written")
            wait_for_lock_waiters(clean_database, 1)
            delete = pool.submit(_send, client, "DELETE", url, headers)
            wait_for_lock_waiters(clean_database, 2)
        written, deleted = write.result(timeout=30), delete.result(timeout=30)

    assert written.status_code == 200, written.text
    assert_problem(deleted, 412, CHANGED)
    after = client.get(url, headers=alice.headers)
    assert after.status_code == 200
    assert after.json() == written.json()
    assert after.json()["title"] == "written"
    assert etag_of(after) == etag_of(written)


# --- Idempotency-Key ------------------------------------------------------------------------


def _post(client: Client, account: Account, body: dict[str, Any], key: str | bytes) -> Any:
    return client.post(
        "/api/tasks", json=body, headers=with_header(account, "Idempotency-Key", key)
    )


def assert_key_reused(response: httpx.Response) -> None:
    """The 422 of a key used with another body (its `errors` have a test of their own)."""
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].split(";")[0] == "application/problem+json"
    assert response.json()["status"] == 422
    assert response.json()["detail"] == KEY_REUSED


def test_a_retry_with_the_same_key_and_body_answers_the_first_201_and_creates_nothing(
    client: Client, alice: Account
) -> None:
    body = {"title": "Pay rent", "description": "by the 1st", "completed": False}
    first = _post(client, alice, body, "8d2e6c1a-rent")
    assert first.status_code == 201, first.text

    retries = [_post(client, alice, body, "8d2e6c1a-rent") for _ in range(3)]

    for retry in retries:
        assert retry.status_code == 201, retry.text
        assert retry.content == first.content
        assert retry.headers["location"] == first.headers["location"]
        assert etag_of(retry) == etag_of(first)
    assert total_of(client, alice) == 1
    # Without a key, the same body is a new task each time, as the contract says.
    for _ in range(2):
        assert client.post("/api/tasks", json=body, headers=alice.headers).status_code == 201
    assert total_of(client, alice) == 3


@pytest.mark.parametrize(
    "stored_as",
    [
        # Written before `completed` and `description` were kept (their defaults apply).
        "task - 'completed' - 'description'",
        # Written by a newer process, with fields this one does not know (ignored).
        """task || '{"recurrence": {"rule": "FREQ=DAILY"}, "reminders": []}'""",
    ],
    ids=["before-a-field-existed", "with-a-field-from-a-newer-version"],
)
def test_a_replay_answers_a_snapshot_stored_by_another_version(
    client: Client, alice: Account, clean_database: str, stored_as: str
) -> None:
    body = {"title": "Pay rent"}
    first = _post(client, alice, body, "rent-1")
    assert first.status_code == 201, first.text
    with psycopg.connect(clean_database) as connection:
        (written,) = connection.execute("SELECT task FROM idempotency_keys").fetchone() or ()
        (rewritten,) = (
            connection.execute(
                f"UPDATE idempotency_keys SET task = {stored_as} RETURNING task"
            ).fetchone()
            or ()
        )
    assert set(rewritten) != set(written)

    replay = _post(client, alice, body, "rent-1")

    assert replay.status_code == 201, replay.text
    assert replay.json() == first.json()
    assert total_of(client, alice) == 1


def test_a_retry_answers_the_task_as_it_was_created_and_creates_nothing_even_later(
    client: Client, alice: Account
) -> None:
    body = {"title": "Water plants"}
    first = _post(client, alice, body, "plants")
    url = first.headers["location"]
    assert client.patch(url, json={"completed": True}, headers=alice.headers).status_code == 200

    after_update = _post(client, alice, body, "plants")
    assert client.delete(url, headers=alice.headers).status_code == 204
    after_delete = _post(client, alice, body, "plants")

    for retry in (after_update, after_delete):
        assert retry.status_code == 201
        assert retry.json() == first.json()
        assert retry.headers["location"] == url
    assert total_of(client, alice) == 0


@pytest.mark.parametrize(
    "other",
    [
        {"title": "Pay rent!"},
        {"title": "Pay rent", "description": "by the 1st"},
        {"title": "Pay rent", "completed": True},
    ],
    ids=["title", "description", "completed"],
)
def test_the_same_key_with_another_body_is_422_and_creates_nothing(
    client: Client, alice: Account, other: dict[str, Any]
) -> None:
    first = _post(client, alice, {"title": "Pay rent"}, "rent-key")
    assert first.status_code == 201

    response = _post(client, alice, other, "rent-key")

    assert_key_reused(response)
    assert total_of(client, alice) == 1
    again = _post(client, alice, {"title": "Pay rent"}, "rent-key")
    assert again.status_code == 201
    assert again.json() == first.json()


def test_the_422_of_a_reused_key_lists_its_errors_as_every_422_does(
    client: Client, alice: Account
) -> None:
    """The contract: validation failures (422) also carry `errors`, a list of field errors; a
    client that reads them on every 422 must find them here too (the field: the header)."""
    assert _post(client, alice, {"title": "Pay rent"}, "rent-key").status_code == 201

    response = _post(client, alice, {"title": "Pay bills"}, "rent-key")

    body = assert_problem(response, 422, KEY_REUSED)
    assert [error["field"] for error in body["errors"]] == ["Idempotency-Key"]


def test_keys_are_per_user(client: Client, alice: Account, bob: Account) -> None:
    body = {"title": "Same words"}
    alices = _post(client, alice, body, "shared-key")
    bobs = _post(client, bob, body, "shared-key")
    bobs_other = _post(client, bob, {"title": "Other words"}, "shared-key-2")
    alices_retry = _post(client, alice, body, "shared-key")

    assert alices.status_code == bobs.status_code == bobs_other.status_code == 201
    assert bobs.json()["id"] != alices.json()["id"]
    assert bobs.json()["user_id"] == bob.id
    assert alices_retry.json() == alices.json()
    assert total_of(client, alice) == 1
    assert total_of(client, bob) == 2


def test_a_key_of_255_printable_characters_is_accepted(client: Client, alice: Account) -> None:
    key = "".join(chr(c) for c in range(0x20, 0x7F)) * 3  # every printable character
    key = key[:255]

    first = _post(client, alice, {"title": "long key"}, key)
    retry = _post(client, alice, {"title": "long key"}, key)

    assert first.status_code == retry.status_code == 201, first.text
    assert retry.json() == first.json()
    assert total_of(client, alice) == 1


@pytest.mark.parametrize(
    "key",
    ["k" * 256, "k" * 10_000, "a\x01b", "a\x7fb", "tab\there", b"caf\xe9", "é".encode()],
    ids=["256", "10000", "control", "delete", "tab", "latin-1", "utf-8"],
)
def test_a_key_too_long_or_not_printable_ascii_is_422_on_the_header(
    client: Client, alice: Account, key: str | bytes
) -> None:
    response = _post(client, alice, {"title": "x"}, key)

    assert error_fields(response) == {"Idempotency-Key"}
    assert total_of(client, alice) == 0


def test_simultaneous_posts_with_one_key_create_one_task_and_all_get_it(
    app_with: AppFactory, clean_database: str
) -> None:
    """Eight retries inside the database at once: the tasks table is locked while they
    arrive, so the first holds the key and the seven others wait for it."""
    concurrent = 8
    client = app_with(pool_max_size=concurrent, pool_timeout_seconds=WAIT_SECONDS)
    alice = Account(client, "alice@example.com")
    body = {"title": "Only once", "description": "whatever the retries"}
    start = threading.Barrier(concurrent)

    def post() -> httpx.Response:
        start.wait(timeout=WAIT_SECONDS)
        return _post(client, alice, body, "one-key-eight-tries")

    with ThreadPoolExecutor(concurrent) as pool:
        with holding(clean_database, "LOCK TABLE tasks IN SHARE MODE"):
            futures = [pool.submit(post) for _ in range(concurrent)]
            # One waits to insert its task; seven wait for its claim on the key.
            wait_for_lock_waiters(clean_database, concurrent)
        answers = [future.result(timeout=30) for future in futures]

    assert [a.status_code for a in answers] == [201] * concurrent, [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert len({a.content for a in answers}) == 1
    assert query(clean_database, "SELECT count(*) FROM tasks") == [(1,)]
    assert total_of(client, alice) == 1


def test_a_key_is_fresh_again_after_24_hours(
    client: Client, alice: Account, clean_database: str
) -> None:
    def age_keys(interval: str) -> None:
        query(
            clean_database,
            "UPDATE idempotency_keys SET created_at = created_at - %s::interval",
            (interval,),
        )

    first = _post(client, alice, {"title": "Daily"}, "daily-key")
    age_keys("23 hours 59 minutes")
    within = _post(client, alice, {"title": "Daily"}, "daily-key")
    assert within.status_code == 201
    assert within.json() == first.json()
    assert total_of(client, alice) == 1

    age_keys("2 minutes")
    fresh = _post(client, alice, {"title": "Another day"}, "daily-key")
    retry = _post(client, alice, {"title": "Another day"}, "daily-key")

    assert fresh.status_code == 201, fresh.text
    assert fresh.json()["id"] != first.json()["id"]
    assert retry.json() == fresh.json()
    assert_key_reused(_post(client, alice, {"title": "Daily"}, "daily-key"))
    assert total_of(client, alice) == 2


# --- keyset paging --------------------------------------------------------------------------


def _walk(client: Client, account: Account, limit: int, **params: Any) -> list[dict[str, Any]]:
    pages: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {"limit": limit, **params, **({"cursor": cursor} if cursor else {})}
        response = client.get("/api/tasks", params=query, headers=account.headers)
        assert response.status_code == 200, response.text
        pages.append(response.json())
        cursor = pages[-1]["next_cursor"]
        if cursor is None:
            return pages
        assert isinstance(cursor, str)
        assert len(pages) < 50, "the cursor never ends"


def _by_offset(client: Client, account: Account, limit: int, **params: Any) -> list[Any]:
    tasks: list[Any] = []
    while True:
        page = client.get(
            "/api/tasks",
            params={"limit": limit, "offset": len(tasks), **params},
            headers=account.headers,
        ).json()
        tasks += page["tasks"]
        if not page["tasks"] or len(tasks) >= page["total"]:
            return tasks


@pytest.fixture
def ten_tasks(client: Client, alice: Account) -> list[dict[str, Any]]:
    """Ten tasks, oldest first; 0, 3, 6 and 9 completed."""
    return [create_task(client, alice, title=f"task {n}", completed=n % 3 == 0) for n in range(10)]


@pytest.mark.parametrize(
    ("params", "expected_count", "page_sizes"),
    [
        ({}, 10, [3, 3, 3, 1]),
        ({"completed": "true"}, 4, [3, 1]),
        ({"completed": "false"}, 6, [3, 3]),
    ],
    ids=["all", "completed", "open"],
)
def test_walking_next_cursor_gives_every_task_once_newest_first_like_offset_paging(
    client: Client,
    alice: Account,
    ten_tasks: list[dict[str, Any]],
    params: dict[str, str],
    expected_count: int,
    page_sizes: list[int],
) -> None:
    expected = [
        task
        for task in reversed(ten_tasks)
        if "completed" not in params or str(task["completed"]).lower() == params["completed"]
    ]

    pages = _walk(client, alice, 3, **params)

    walked = [task for page in pages for task in page["tasks"]]
    assert [len(page["tasks"]) for page in pages] == page_sizes
    assert walked == expected
    assert len({task["id"] for task in walked}) == expected_count
    assert walked == _by_offset(client, alice, 3, **params)
    for page in pages:
        assert (page["total"], page["limit"], page["offset"]) == (expected_count, 3, 0)
    assert [page["next_cursor"] is None for page in pages] == [False] * (len(pages) - 1) + [True]


def test_cursor_with_offset_skips_offset_more_tasks_after_the_cursor(
    client: Client, alice: Account, ten_tasks: list[dict[str, Any]]
) -> None:
    newest_first = list(reversed(ten_tasks))
    first = client.get("/api/tasks", params={"limit": 3}, headers=alice.headers).json()

    response = client.get(
        "/api/tasks",
        params={"limit": 3, "cursor": first["next_cursor"], "offset": 2},
        headers=alice.headers,
    )

    assert response.status_code == 200
    page = response.json()
    assert page["tasks"] == newest_first[5:8]
    assert (page["total"], page["limit"], page["offset"]) == (10, 3, 2)
    assert isinstance(page["next_cursor"], str)


def test_a_cursor_past_the_last_task_gives_an_empty_last_page(
    client: Client, alice: Account, ten_tasks: list[dict[str, Any]]
) -> None:
    last = _walk(client, alice, 9)[0]
    response = client.get(
        "/api/tasks",
        params={"limit": 9, "cursor": last["next_cursor"], "offset": 5},
        headers=alice.headers,
    )

    assert response.status_code == 200
    assert response.json()["tasks"] == []
    assert response.json()["next_cursor"] is None
    assert response.json()["total"] == 10


@pytest.mark.parametrize(
    "position",
    [
        "0001-01-01T00:00:00+14:00",
        "0001-01-01T00:00:00-14:00",
        "9999-12-31T23:59:59.999999-14:00",
        "9999-12-31T23:59:59.999999+14:00",
        "1970-01-01T00:00:00+00:00",
    ],
)
def test_a_well_formed_cursor_at_the_ends_of_time_is_a_page_not_an_error(
    client: Client, alice: Account, ten_tasks: list[dict[str, Any]], position: str
) -> None:
    cursor = encode_cursor(TaskQuery(), TaskPosition(datetime.fromisoformat(position), uuid4()))

    response = client.get("/api/tasks", params={"cursor": cursor}, headers=alice.headers)

    assert response.status_code == 200, response.text
    expected = 10 if position.startswith("9999") else 0
    assert len(response.json()["tasks"]) == expected
    assert response.json()["total"] == 10


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "!!!",
        "abc",
        "x" * 500,
        b64(b"no separator"),
        b64(b"a|b|c"),
        b64(f"2024-01-01T00:00:00|{SOME_ID}".encode()),  # no time zone
        b64(b"2024-01-01T00:00:00+00:00|not-a-uuid"),
        b64(f"yesterday|{SOME_ID}".encode()),
        b64(b"\xff\xfe\xfd|\x80"),
        b64(f"\uff12\uff10\uff12\uff14-01-01T00:00:00+00:00|{SOME_ID}".encode()),
    ],
)
def test_a_cursor_the_api_did_not_give_out_is_422_on_the_cursor(
    client: Client, alice: Account, cursor: str
) -> None:
    response = client.get("/api/tasks", params={"cursor": cursor}, headers=alice.headers)

    assert error_fields(response) == {"cursor"}


# --- request ids ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "request_id",
    ["abc", "a" * 128, "0", "A-Za-z0-9._:@/+=-", "edge:42@lb/1+x=y", SOME_ID],
)
def test_a_sane_incoming_request_id_is_echoed(client: Client, request_id: str) -> None:
    response = client.get("/health/live", headers={"X-Request-ID": request_id})

    assert response.headers["x-request-id"] == request_id


@pytest.mark.parametrize(
    "request_id",
    ["a" * 129, "has space", 'quo"te', "it's", "semi;colon", "<script>", "", b"caf\xe9", "a,b"],
)
def test_an_insane_incoming_request_id_is_replaced_by_a_fresh_one(
    client: Client, request_id: str | bytes
) -> None:
    first = client.get("/health/live", headers={"X-Request-ID": request_id})
    second = client.get("/health/live", headers={"X-Request-ID": request_id})

    ids = [first.headers["x-request-id"], second.headers["x-request-id"]]
    for rid in ids:
        assert SANE_REQUEST_ID.fullmatch(rid), rid
        assert rid != (
            request_id.decode("latin-1") if isinstance(request_id, bytes) else request_id
        )
    assert ids[0] != ids[1]


def test_every_answer_carries_a_request_id_and_only_5xx_bodies_repeat_it(
    client: Client, alice: Account, unreachable: Client
) -> None:
    created = client.post("/api/tasks", json={"title": "x"}, headers=alice.headers)
    task, tag = created.json(), etag_of(created)
    token = mint(standard_claims(str(uuid4())))
    answers = {
        200: client.get("/health/live"),
        201: client.post("/api/tasks", json={"title": "x"}, headers=alice.headers),
        304: client.get(task_url(task), headers=with_header(alice, "If-None-Match", tag)),
        401: client.get("/api/tasks"),
        404: client.get("/nope"),
        405: client.delete("/health"),
        412: client.patch(task_url(task), json={}, headers=with_header(alice, "If-Match", '"1"')),
        422: client.get("/api/tasks/not-a-uuid", headers=alice.headers),
        503: unreachable.get("/api/tasks", headers=bearer(token)),
    }

    ids = []
    for status, response in answers.items():
        assert response.status_code == status, (status, response.text)
        rid = response.headers.get("x-request-id")
        assert rid is not None and SANE_REQUEST_ID.fullmatch(rid), (status, response.headers)
        ids.append(rid)
        if status >= 400:
            body = assert_problem(response, status)
            if status >= 500:
                assert body["request_id"] == rid
            else:
                assert "request_id" not in body, (status, body)
    assert len(set(ids)) == len(ids)


def test_a_503_problem_names_the_incoming_request_id(unreachable: Client) -> None:
    token = mint(standard_claims(str(uuid4())))

    response = unreachable.get(
        "/api/tasks", headers={**bearer(token), "X-Request-ID": "trace-503-abc"}
    )

    body = assert_problem(response, 503)
    assert response.headers["x-request-id"] == "trace-503-abc"
    assert body["request_id"] == "trace-503-abc"


# --- the request log ------------------------------------------------------------------------


def _request_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == "todo_api.requests"]


def test_each_request_is_logged_once_with_method_route_status_duration_and_user(
    client: Client, alice: Account, caplog: pytest.LogCaptureFixture
) -> None:
    task = create_task(client, alice)
    caplog.set_level(logging.DEBUG)
    expected = [
        ("GET", "/api/tasks", 200, alice.id),
        ("GET", "/api/tasks/{task_id}", 200, alice.id),
        ("PATCH", "/api/tasks/{task_id}", 412, alice.id),
        ("GET", "/api/tasks", 401, None),
    ]
    bad_token = mint(standard_claims(alice.id), secret="o" * 40)

    for method, route, status, user in expected:
        caplog.clear()
        headers = alice.headers if user else bearer(bad_token)
        if status == 412:
            headers = {**headers, "If-Match": '"1"'}
        url = route.replace("{task_id}", task["id"])
        body = {"title": "x"} if method == "PATCH" else None
        assert client.request(method, url, headers=headers, json=body).status_code == status

        (record,) = _request_records(caplog)
        fields = vars(record)
        assert (fields["method"], fields["route"], fields["status"]) == (method, route, status)
        assert type(fields["duration_ms"]) in (int, float)
        assert 0 <= fields["duration_ms"] < 30_000
        assert fields.get("user_id") == user
        for anything in caplog.records:
            text = f"{anything.getMessage()} {vars(anything)}"
            assert alice.token not in text
            assert bad_token not in text


@contextmanager
def json_logging() -> Iterator[None]:
    """The service's own logging configuration (JSON lines on stderr) for the block."""
    root = logging.getLogger()
    names = ("yoyo", "uvicorn", "uvicorn.error", "uvicorn.access")
    saved = [
        (logger, logger.level, logger.disabled, logger.propagate, logger.handlers[:])
        for logger in [root, *map(logging.getLogger, names)]
    ]
    configure_logging("INFO", "json")
    try:
        yield
    finally:
        for logger, level, disabled, propagate, handlers in saved:
            logger.setLevel(level)
            logger.disabled = disabled
            logger.propagate = propagate
            logger.handlers[:] = handlers


def test_the_json_request_log_line_carries_the_request_id_and_user_and_never_the_token(
    client: Client, alice: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    task = create_task(client, alice)
    bad_token = mint(standard_claims(alice.id), secret="o" * 40)
    capsys.readouterr()

    with json_logging():
        listed = client.get("/api/tasks", headers={**alice.headers, "X-Request-ID": "trace-7"})
        fetched = client.get(task_url(task), headers=alice.headers)
        refused = client.get("/api/tasks", headers=bearer(bad_token))
        wrong = {"email": alice.email, "password": "Not-Her-Password-93"}
        failed_login = client.post("/api/auth/login", json=wrong)
    err = capsys.readouterr().err

    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    requests = [line for line in lines if line.get("logger") == "todo_api.requests"]
    assert len(requests) == 4, err
    answers = (listed, fetched, refused, failed_login)
    for line, response in zip(requests, answers, strict=True):
        assert line["request_id"] == response.headers["x-request-id"]
        assert line["status"] == response.status_code
        assert line["method"] == response.request.method
        assert isinstance(line["duration_ms"], int | float)
    assert requests[0]["request_id"] == "trace-7"
    assert [line["route"] for line in requests] == [
        "/api/tasks",
        "/api/tasks/{task_id}",
        "/api/tasks",
        "/api/auth/login",
    ]
    assert [line.get("user_id") for line in requests] == [alice.id, alice.id, None, None]
    for secret in (alice.token, bad_token, wrong["password"]):
        assert secret not in err


# --- health ---------------------------------------------------------------------------------


def test_liveness_answers_200_without_touching_the_database(
    client: Client, unreachable: Client
) -> None:
    for app in (client, unreachable):
        response = app.get("/health/live")

        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert response.json() == {"status": "alive"}


def test_readiness_answers_503_within_3_seconds_when_the_database_is_unreachable() -> None:
    settings = make_settings(UNREACHABLE_DATABASE)  # requests would wait 5 s for a connection
    with TestClient(create_app(settings)) as client:
        started = time.monotonic()
        response = client.get("/health")
        elapsed = time.monotonic() - started
        live = client.get("/health/live")

    assert response.status_code == 503
    assert response.json() == {"status": "unhealthy", "database": "unreachable"}
    assert response.headers["retry-after"].isdigit()
    assert elapsed < 3.0, elapsed
    assert live.status_code == 200


# --- metrics --------------------------------------------------------------------------------

REQUESTS = "todo_api_http_requests_total"
LATENCY_COUNT = "todo_api_http_request_duration_seconds_count"


def test_metrics_count_requests_by_method_route_and_status(client: Client, alice: Account) -> None:
    task = create_task(client, alice)
    before = scrape(client)

    for _ in range(3):
        assert client.get("/api/tasks", headers=alice.headers).status_code == 200
    assert client.get("/api/tasks").status_code == 401
    assert client.get(task_url(task), headers=alice.headers).status_code == 200
    after = scrape(client)
    text = client.get("/metrics", headers=bearer(METRICS_TOKEN)).text

    def grew(name: str, **labels: str) -> float:
        return value_of(after, name, **labels) - value_of(before, name, **labels)

    assert grew(REQUESTS, method="GET", route="/api/tasks", status="200") == 3
    assert grew(REQUESTS, method="GET", route="/api/tasks", status="401") == 1
    assert grew(REQUESTS, method="GET", route="/api/tasks/{task_id}", status="200") == 1
    assert grew(LATENCY_COUNT, method="GET", route="/api/tasks") == 4
    assert 'todo_api_http_requests_total{method="GET",route="/api/tasks",status="200"}' in text
    assert "# TYPE todo_api_http_request_duration_seconds histogram" in text


def test_metrics_count_methods_no_route_has_as_other(client: Client) -> None:
    # Some HTTP parsers pass any word through as a method: one series per word would grow
    # without bound.
    before = scrape(client)

    for method in ("BREW", "PROPFIND", "X-ANYTHING"):
        assert client.request(method, "/api/tasks").status_code == 405

    after = scrape(client)
    other = {
        dict(labels)["route"]: value - before.get((name, labels), 0.0)
        for (name, labels), value in after.items()
        if name == REQUESTS
        and ("method", "OTHER") in labels
        and value > before.get((name, labels), 0.0)
    }
    assert other == {"unmatched": 3}, other  # no route answers these methods
    assert not any(("method", "BREW") in labels for _, labels in after)


def test_metrics_report_the_pool_and_the_password_queues(client: Client) -> None:
    samples = scrape(client)

    pool = {
        state: value_of(samples, "todo_api_db_pool_connections", state=state)
        for state in ("open", "idle", "in_use", "max")
    }
    assert ("todo_api_db_pool_connections", frozenset({("state", "max")})) in samples
    assert pool["max"] == 4  # make_settings' pool
    assert 1 <= pool["open"] <= pool["max"]
    assert pool["idle"] + pool["in_use"] == pool["open"]
    assert ("todo_api_db_pool_waiting", frozenset()) in samples
    assert ("todo_api_password_hashing_waiting", frozenset()) in samples
    assert value_of(samples, "todo_api_password_hashing_waiting") == 0
    assert ("todo_api_password_strength_checks_waiting", frozenset()) in samples
    assert value_of(samples, "todo_api_password_strength_checks_waiting") == 0


def test_failed_logins_are_counted(client: Client, alice: Account) -> None:
    before = scrape(client)

    for email in (alice.email, "nobody@example.com"):
        response = client.post("/api/auth/login", json={"email": email, "password": "wrong!!"})
        assert_problem(response, 401)
    assert client.post(
        "/api/auth/login", json={"email": alice.email, "password": PASSWORD}
    ).is_success
    after = scrape(client)

    failures = "todo_api_login_failures_total"
    assert value_of(after, failures) - value_of(before, failures) == 2


def test_a_429_is_counted_as_throttled(client: Client, alice: Account) -> None:
    before = scrape(client)
    statuses = [
        client.post(
            "/api/auth/login", json={"email": alice.email, "password": "wrong!!"}
        ).status_code
        for _ in range(7)
    ]
    after = scrape(client)

    assert statuses.count(429) >= 1, statuses
    throttled = "todo_api_throttled_total"
    assert total_value(after, throttled) - total_value(before, throttled) == statuses.count(429)
    assert value_of(after, throttled, reason="TooManyFailedLogins") >= statuses.count(429)


def test_metrics_need_the_metrics_token_when_one_is_set(
    app_with: AppFactory, alice: Account
) -> None:
    protected = app_with(metrics_token="s3cret")

    assert_problem(protected.get("/metrics"), 401, "Not authenticated")
    assert_problem(protected.get("/metrics", headers=bearer("s3cre")), 401, "Invalid token")
    assert_problem(protected.get("/metrics", headers=bearer("s3cret2")), 401, "Invalid token")
    assert_problem(protected.get("/metrics", headers=alice.headers), 401, "Invalid token")
    assert_problem(protected.get("/metrics", headers={"Authorization": "Basic s3cret"}), 401)
    samples = scrape(protected, token="s3cret")
    assert ("todo_api_db_pool_waiting", frozenset()) in samples
    assert "/metrics" in protected.get("/schema/openapi.json").json()["paths"]


def _without_request_id(response: httpx.Response) -> tuple[int, dict[str, str], bytes]:
    headers = {name: value for name, value in response.headers.items() if name != "x-request-id"}
    return response.status_code, headers, response.content


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "OPTIONS"])
def test_without_a_metrics_token_metrics_answer_as_an_unknown_route_does(
    app_with: AppFactory, alice: Account, method: str
) -> None:
    # A stranger must not learn that the route exists, whatever they send.
    closed = app_with(metrics_token=None)

    for headers in ({}, bearer(METRICS_TOKEN), alice.headers):
        metrics = closed.request(method, "/metrics", headers=headers)
        unknown = closed.request(method, "/metrix", headers=headers)
        assert _without_request_id(metrics) == _without_request_id(unknown)
    assert_problem(closed.get("/metrics"), 404, "Not Found")


def test_without_a_metrics_token_the_api_document_has_no_metrics(app_with: AppFactory) -> None:
    document = app_with(metrics_token=None).get("/schema/openapi.json").json()

    assert "/metrics" not in document["paths"]
    assert "/health" in document["paths"]  # the rest is still described
    assert "metrics" not in json.dumps(document).lower()


# --- overload -------------------------------------------------------------------------------


def test_beyond_the_waiting_bound_requests_get_503_at_once_and_the_app_carries_on(
    app_with: AppFactory, clean_database: str
) -> None:
    """One connection, one request allowed to wait for it. The tasks table is locked, so the
    request holding the connection blocks inside the database; a second waits for the
    connection; every further one is refused at once, without waiting for the timeout."""
    client = app_with(
        pool_min_size=1,
        pool_max_size=1,
        pool_max_waiting=1,
        pool_timeout_seconds=WAIT_SECONDS,
        metrics_token=METRICS_TOKEN,
    )
    alice = Account(client, "alice@example.com")
    create_task(client, alice)
    before = scrape(client)

    def waiting() -> float:
        return value_of(scrape(client), "todo_api_db_pool_waiting")

    refused: list[tuple[httpx.Response, float]] = []
    with ThreadPoolExecutor(2) as pool:
        with holding(clean_database, "LOCK TABLE tasks IN ACCESS EXCLUSIVE MODE"):
            held = pool.submit(client.get, "/api/tasks", headers=alice.headers)
            wait_for_lock_waiters(clean_database, 1)
            queued = pool.submit(client.get, "/api/tasks", headers=alice.headers)
            wait_until(lambda: waiting() == 1, "a request waiting for the connection")
            for _ in range(3):
                started = time.monotonic()
                response = client.get("/api/tasks", headers=alice.headers)
                refused.append((response, time.monotonic() - started))
        admitted = [held.result(timeout=30), queued.result(timeout=30)]

    for response, seconds in refused:
        assert_problem(response, 503, BUSY)
        assert response.headers["retry-after"] == "1"
        assert seconds < 2.0, seconds
    for response in admitted:
        assert response.status_code == 200, response.text
        assert response.json()["total"] == 1
    assert client.get("/api/tasks", headers=alice.headers).status_code == 200
    assert client.get("/health").status_code == 200
    after = scrape(client)
    assert (
        value_of(after, "todo_api_throttled_total", reason="ServerBusy")
        - value_of(before, "todo_api_throttled_total", reason="ServerBusy")
        == 3
    )
    assert value_of(after, "todo_api_db_pool_waiting") == 0
