"""SIGTERM during a load: the listener closes, the requests already accepted are finished and
answered completely, the pool is closed and the process exits 0 within the grace period."""

import signal
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.faults.support import (
    bearer,
    query,
    service_env,
    sign_up,
    start_server,
    wait_for_lock_waiters,
)

pytestmark = pytest.mark.faults

GRACE_SECONDS = 5
LOADERS = 6
STEADY_LOAD_SECONDS = 1.0
IN_FLIGHT_AFTER_SIGTERM_SECONDS = 1.0
"""How long the accepted requests stay unfinished (blocked on a lock) after the signal."""
MAX_CALLS_PER_LOADER = 2000


@dataclass(frozen=True)
class Call:
    method: str
    started: float
    ended: float
    status: int | None = None
    task_id: str | None = None
    problem: str | None = None
    error: type[Exception] | None = None


def _call(client: httpx.Client, method: str, title: str) -> Call:
    started = time.monotonic()
    try:
        if method == "POST":
            response = client.post("/api/tasks", json={"title": title})
        else:
            response = client.get("/api/tasks", params={"limit": 5})
        body = response.json()  # the whole body, or the error of a cut-off one
    except (httpx.HTTPError, ValueError) as error:
        return Call(method, started, time.monotonic(), error=type(error))
    ended = time.monotonic()
    expected = 201 if method == "POST" else 200
    valid = (
        body.get("title") == title
        if method == "POST"
        else isinstance(body.get("tasks"), list) and isinstance(body.get("total"), int)
    )
    problem = None if response.status_code == expected and valid else response.text[:300]
    task_id = body.get("id") if method == "POST" else None
    return Call(method, started, ended, response.status_code, task_id, problem)


def _refuses_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except ConnectionRefusedError:
        return True


def test_sigterm_finishes_accepted_requests_and_exits_0(
    tmp_path: Path, empty_database: str
) -> None:
    env = service_env(tmp_path, empty_database, SHUTDOWN_GRACE_SECONDS=str(GRACE_SECONDS))
    server = start_server(tmp_path, env)
    try:
        server.wait_healthy()
        token = sign_up(server.base_url, "steady@example.com")
        calls: list[Call] = []
        stop = threading.Event()

        def loader(number: int) -> None:
            # No keep-alive: every request on a new connection, so a request is either
            # accepted by the server or refused at connect, never sent on a closing connection.
            limits = httpx.Limits(max_keepalive_connections=0)
            with httpx.Client(
                base_url=server.base_url, headers=bearer(token), timeout=15, limits=limits
            ) as client:
                for sequence in range(MAX_CALLS_PER_LOADER):
                    if stop.is_set():
                        return
                    method = "POST" if number % 2 else "GET"
                    call = _call(client, method, f"loader {number} task {sequence}")
                    calls.append(call)
                    if call.error is httpx.ConnectError:
                        return  # the listener is closed: the server is going away

        threads = [threading.Thread(target=loader, args=(n,)) for n in range(LOADERS)]
        for thread in threads:
            thread.start()
        try:
            time.sleep(STEADY_LOAD_SECONDS)
            with psycopg.connect(empty_database) as blocker:
                # Every loader's next request gets stuck in the database, accepted and unanswered.
                blocker.execute("LOCK TABLE tasks IN ACCESS EXCLUSIVE MODE")
                blocked = wait_for_lock_waiters(empty_database, LOADERS)
                assert blocked == LOADERS, (blocked, server.output())
                signalled = time.monotonic()
                server.process.send_signal(signal.SIGTERM)

                # It stops accepting connections at once...
                while not _refuses_connections(server.port):
                    assert time.monotonic() < signalled + 3, server.output()
                    time.sleep(0.05)
                closed = time.monotonic()
                # ...but keeps the accepted requests going.
                time.sleep(max(0.0, signalled + IN_FLIGHT_AFTER_SIGTERM_SECONDS - closed))
                assert server.process.poll() is None, server.output()
            # The lock is gone: the requests in flight finish.
            code = server.process.wait(timeout=GRACE_SECONDS + 10)
            exit_seconds = time.monotonic() - signalled
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
        assert not any(thread.is_alive() for thread in threads), "a loader hangs"
    finally:
        server.kill()
    log = server.output()
    print(
        f"calls {len(calls)}, listener closed {closed - signalled:.2f} s and exit "
        f"{exit_seconds:.2f} s after SIGTERM"
    )

    assert code == 0, log
    assert exit_seconds < GRACE_SECONDS, log
    answered = [c for c in calls if c.error is None]
    # Every request the server accepted got a whole, valid answer, the ones in flight when the
    # signal came included...
    in_flight = [c for c in calls if c.started < signalled < c.ended]
    assert len(in_flight) == LOADERS, (calls, log)
    assert [c for c in in_flight if c.error or c.problem] == [], log
    assert [c for c in answered if c.problem] == [], log
    # ...and the only failures are connections refused once the listener was closed.
    failed = [c for c in calls if c.error is not None]
    assert [c for c in failed if c.error is not httpx.ConnectError] == [], (failed, log)
    assert all(c.started > closed for c in failed), (failed, closed)
    assert len(failed) <= LOADERS
    assert "Traceback" not in log, log

    # Nothing acknowledged was lost when the pool closed.
    acknowledged = {c.task_id for c in answered if c.method == "POST"}
    stored = {task_id for (task_id,) in query(empty_database, "SELECT id::text FROM tasks")}
    assert acknowledged - stored == set()
    assert {c.method for c in in_flight} == {"GET", "POST"}
