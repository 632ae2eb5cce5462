"""The database error policy over HTTP, on the real database: a statement past its timeout and a
transaction the database aborts for a conflict each answer 503 with Retry-After and a detail
of their own, and are logged as what they are, not as the database being unavailable."""

import logging
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

import psycopg
import pytest
from litestar.testing import TestClient
from psycopg.conninfo import make_conninfo

from entrypoints.http.app import create_app
from tests.http.support import Account, Client, assert_problem, create_task, make_settings
from tests.http.test_resilience import holding_row

TIMED_OUT = "The database took too long to answer; retry shortly"
CONFLICT = "The request conflicted with a concurrent one; retry shortly"
UNAVAILABLE = "database unavailable"
# Titles a trigger of the test's own answers for, as a slow or conflicting database would.
SLOW, CONFLICTING = "test trigger: slow", "test trigger: conflict"


@pytest.fixture
def app_with(clean_database: str) -> Iterator[Callable[..., Client]]:
    """Apps over the test's database whose sessions have the given settings (in the URL's
    options, which win over the service's own)."""
    with ExitStack() as stack:

        def make(**session: str) -> Client:
            options = " ".join(f"-c {name}={value}" for name, value in session.items())
            url = make_conninfo(clean_database, options=options) if options else clean_database
            settings = make_settings(url, pool_min_size=1, pool_max_size=2)
            return stack.enter_context(TestClient(create_app(settings)))

        yield make


@contextmanager
def misbehaving_inserts(url: str) -> Iterator[None]:
    """For the block, the server sleeps on inserting a task titled SLOW, and fails the insert of
    one titled CONFLICTING as it fails the loser of a deadlock (SQLSTATE 40P01)."""
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(
            f"""
            CREATE FUNCTION test_misbehave() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.title = '{CONFLICTING}' THEN
                    RAISE EXCEPTION 'deadlock detected (as the test makes it)'
                        USING ERRCODE = 'deadlock_detected';
                END IF;
                IF NEW.title = '{SLOW}' THEN
                    PERFORM pg_sleep(5);
                END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER test_misbehave BEFORE INSERT ON tasks
                FOR EACH ROW EXECUTE FUNCTION test_misbehave();
            """
        )
        try:
            yield
        finally:
            connection.execute(
                "DROP TRIGGER test_misbehave ON tasks; DROP FUNCTION test_misbehave()"
            )


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "todo_api.http" and record.levelno == logging.WARNING
    ]


def test_a_write_waiting_past_lock_timeout_is_503_with_retry_after_then_goes_through(
    app_with: Callable[..., Client], clean_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = app_with(lock_timeout="300ms")
    alice = Account(client, "alice@example.com")
    task = create_task(client, alice)
    url = f"/api/tasks/{task['id']}"

    with holding_row(clean_database, task["id"]):  # a writer in the middle of a change
        refused = client.patch(url, json={"completed": True}, headers=alice.headers)
    accepted = client.patch(url, json={"completed": True}, headers=alice.headers)

    assert_problem(refused, 503, TIMED_OUT)
    assert refused.headers["retry-after"] == "5"
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["completed"] is True
    logged = warnings_of(caplog)
    assert any(m.startswith("database statement timed out: ") for m in logged), logged
    assert "lock timeout" in " ".join(logged)
    assert not any(m.startswith(UNAVAILABLE) for m in logged), logged


def test_a_statement_past_statement_timeout_is_503_and_leaves_nothing_behind(
    app_with: Callable[..., Client], clean_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = app_with(statement_timeout="300ms")
    alice = Account(client, "alice@example.com")

    with misbehaving_inserts(clean_database):
        refused = client.post("/api/tasks", json={"title": SLOW}, headers=alice.headers)
        created = client.post("/api/tasks", json={"title": "fine"}, headers=alice.headers)

    assert_problem(refused, 503, TIMED_OUT)
    assert refused.headers["retry-after"] == "5"
    assert created.status_code == 201, created.text
    listed = client.get("/api/tasks", headers=alice.headers).json()
    assert [t["title"] for t in listed["tasks"]] == ["fine"]
    logged = warnings_of(caplog)
    assert any("database statement timed out: " in m and "statement timeout" in m for m in logged)
    assert not any(m.startswith(UNAVAILABLE) for m in logged), logged


def test_a_transaction_conflict_is_503_with_retry_after_and_logged_as_a_conflict(
    app_with: Callable[..., Client], clean_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = app_with()
    alice = Account(client, "alice@example.com")

    with misbehaving_inserts(clean_database):
        refused = client.post("/api/tasks", json={"title": CONFLICTING}, headers=alice.headers)
        created = client.post("/api/tasks", json={"title": "fine"}, headers=alice.headers)

    body = assert_problem(refused, 503, CONFLICT)
    assert refused.headers["retry-after"] == "1"
    assert body["request_id"] == refused.headers["x-request-id"]
    assert created.status_code == 201, created.text
    logged = warnings_of(caplog)
    conflicts = [m for m in logged if m.startswith("database transaction conflicted")]
    assert conflicts, logged
    assert "deadlock detected" in conflicts[0]
    assert not any(m.startswith(UNAVAILABLE) for m in logged), logged
