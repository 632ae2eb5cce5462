"""The database goes down (an immediate stop: a crash, clients cut off) in the middle of a write
load and comes back: no 500, no hang, 503s that say when to retry, /health says so, the service
heals by itself, and no acknowledged write is lost."""

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.faults.support import (
    Cluster,
    bearer,
    problem_of,
    query,
    service_env,
    serving,
    sign_up,
    wait_for_lock_waiters,
)

pytestmark = pytest.mark.faults

WRITERS = 8
LOAD_BEFORE_OUTAGE_SECONDS = 1.0
OUTAGE_SECONDS = 8.0
"""Longer than the pool's 5 s wait, so that writes are refused during it; and long enough that
psycopg_pool's own reconnection back-off (1 s, doubling: tries at about 1, 3, 7 and 15 s)
would leave the service down for seconds after the database is back."""
MAX_REQUEST_SECONDS = 6.0
"""The pool waits 5 s for a connection before answering 503; a little more for the rest."""
RECOVERY_SECONDS = 2.0
"""From the database accepting connections again to the first acknowledged write."""
LOAD_AFTER_RECOVERY_SECONDS = 1.0
MAX_WRITES_PER_WRITER = 3000


@dataclass(frozen=True)
class Write:
    title: str
    started: float
    ended: float
    status: int | None = None
    task_id: str | None = None
    problem: str | None = None
    """Why the answer is not what it must be (None: it is a 201 task or a retryable 503)."""
    error: str | None = None
    """The transport error, when there was no answer at all."""

    @property
    def seconds(self) -> float:
        return self.ended - self.started


def _post(client: httpx.Client, title: str) -> Write:
    started = time.monotonic()
    try:
        response = client.post("/api/tasks", json={"title": title})
    except httpx.HTTPError as error:
        return Write(title, started, time.monotonic(), error=repr(error))
    ended = time.monotonic()
    status = response.status_code
    if status == 201:
        body = response.json()
        problem = None if body.get("title") == title else f"201 with body {body!r}"
        return Write(title, started, ended, status, task_id=body.get("id"), problem=problem)
    if status == 503:
        return Write(title, started, ended, status, problem=problem_of(response))
    return Write(title, started, ended, status, problem=f"{status}: {response.text[:300]}")


def test_writes_survive_a_database_crash_and_recover_by_themselves(
    tmp_path: Path, own_cluster: Cluster
) -> None:
    database = own_cluster.create_database("todo")
    with serving(tmp_path, service_env(tmp_path, database)) as server:
        token = sign_up(server.base_url, "writer@example.com")
        writes: list[Write] = []
        stop = threading.Event()

        def writer(number: int) -> None:
            with httpx.Client(
                base_url=server.base_url, headers=bearer(token), timeout=15
            ) as client:
                for sequence in range(MAX_WRITES_PER_WRITER):
                    if stop.is_set():
                        return
                    writes.append(_post(client, f"writer {number} task {sequence}"))

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
        for thread in threads:
            thread.start()
        try:
            time.sleep(LOAD_BEFORE_OUTAGE_SECONDS)
            # The crash hits every writer mid-transaction: first each one's current write is
            # made to wait in the database (the tasks table locked), then the server dies.
            blocker = psycopg.connect(database)
            blocker.execute("LOCK TABLE tasks IN ACCESS EXCLUSIVE MODE")
            blocked = wait_for_lock_waiters(database, WRITERS)
            down_at = time.monotonic()
            own_cluster.stop("immediate")
            stopped_at = time.monotonic()
            blocker.close()
            assert blocked == WRITERS, server.output()

            # While it is down: the process is alive, and /health says the database is not.
            live = httpx.get(f"{server.base_url}/health/live", timeout=5)
            assert live.status_code == 200, live.text
            asked = time.monotonic()
            health = httpx.get(f"{server.base_url}/health", timeout=15)
            health_seconds = time.monotonic() - asked
            assert health.status_code == 503, health.text
            assert health.json() == {"status": "unhealthy", "database": "unreachable"}
            assert health_seconds < MAX_REQUEST_SECONDS, health_seconds

            time.sleep(max(0.0, down_at + OUTAGE_SECONDS - time.monotonic()))
            up_at = own_cluster.start()
            outage_seconds = up_at - down_at

            # Writes succeed again, soon, without a restart of the service.
            while time.monotonic() < up_at + RECOVERY_SECONDS + 5 and not any(
                w.status == 201 and w.ended > up_at for w in writes
            ):
                time.sleep(0.02)
            time.sleep(LOAD_AFTER_RECOVERY_SECONDS)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
        assert not any(thread.is_alive() for thread in threads), "a writer hangs"

        recovered = [w.ended for w in writes if w.status == 201 and w.ended > up_at]
        recovery_seconds = min(recovered) - up_at if recovered else None
        print(  # shown with -s or on failure: the timings of this run
            f"writes {len(writes)}, 201: {sum(w.status == 201 for w in writes)}, "
            f"503: {sum(w.status == 503 for w in writes)}, outage {outage_seconds:.2f} s, "
            f"/health while down {health_seconds:.2f} s, first 201 after the restart "
            f"{recovery_seconds} s, slowest answer {max(w.seconds for w in writes):.2f} s"
        )
        log = server.output()

        # Every request got an answer, in time, and every answer was a 201 task or a 503 that
        # says when to retry: never a 500.
        assert [w for w in writes if w.error] == [], log
        assert [w for w in writes if w.problem] == [], log
        assert [w for w in writes if w.seconds > MAX_REQUEST_SECONDS] == [], log
        assert "Traceback" not in log, log
        # The load really went through the outage: acknowledged before; the writes cut off
        # mid-transaction by the crash refused; and writes refused during it after waiting for
        # a connection.
        assert any(w.status == 201 and w.ended < down_at for w in writes)
        cut_off = [w for w in writes if w.started < down_at < w.ended]
        assert [w.status for w in cut_off] == [503] * WRITERS, log
        assert any(w.status == 503 and stopped_at + 0.5 < w.ended < up_at for w in writes), log
        # It healed by itself: a write acknowledged soon after the database came back, and
        # every write begun after that acknowledged too.
        assert recovery_seconds is not None, log
        assert recovery_seconds <= RECOVERY_SECONDS, (recovery_seconds, log)
        healed_at = up_at + recovery_seconds
        assert [w for w in writes if w.started > healed_at and w.status != 201] == [], log
        assert httpx.get(f"{server.base_url}/health", timeout=10).status_code == 200

    # No acknowledged write is lost: each task that got a 201 is in the database, as sent.
    acknowledged = {w.task_id: w.title for w in writes if w.status == 201}
    stored = dict(query(database, "SELECT id::text, title FROM tasks"))
    missing = {task_id: title for task_id, title in acknowledged.items() if task_id not in stored}
    assert missing == {}
    assert all(stored[task_id] == title for task_id, title in acknowledged.items())
