"""Far more concurrent requests than pool connections: they queue up to a bound, the rest get a
503 that says when to retry; nothing crashes, and the service serves normally afterwards."""

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.faults.support import bearer, problem_of, service_env, serving, sign_up

pytestmark = pytest.mark.faults

POOL_MAX = 3
MAX_WAITING = 5
CONCURRENT = 200
MAX_LOCK_SECONDS = 8.0
"""The tasks table stays locked in the second burst (every connection is busy) until all but
the admitted requests are answered (at most this long)."""
REQUEST_TIMEOUT_SECONDS = 20
NORMAL_ANSWER_SECONDS = 1.0


@dataclass(frozen=True)
class Answer:
    status: int | None
    seconds: float
    problem: str | None = None
    error: str | None = None
    detail: str = ""

    @property
    def busy(self) -> bool:
        """A 503 for too many requests, not for an unreachable database."""
        return self.status == 503 and "busy" in self.detail.lower()


async def _burst(
    base_url: str, token: str, count: int, answered: list[Answer] | None = None
) -> list[Answer]:
    """`count` GET /api/tasks at once, each on its own connection; each answer is also
    appended to `answered` as it comes."""
    answered = [] if answered is None else answered
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with httpx.AsyncClient(
        base_url=base_url, headers=bearer(token), timeout=REQUEST_TIMEOUT_SECONDS, limits=limits
    ) as client:

        async def one() -> Answer:
            answer = await attempt()
            answered.append(answer)
            return answer

        async def attempt() -> Answer:
            started = time.monotonic()
            try:
                response = await client.get("/api/tasks")
            except httpx.HTTPError as error:
                return Answer(None, time.monotonic() - started, error=repr(error))
            seconds = time.monotonic() - started
            if response.status_code == 200:
                ok = isinstance(response.json().get("tasks"), list)
                return Answer(200, seconds, None if ok else response.text[:300])
            if response.status_code == 503:
                problem = problem_of(response)
                detail = "" if problem else str(response.json().get("detail"))
                return Answer(503, seconds, problem, detail=detail)
            return Answer(response.status_code, seconds, response.text[:300])

        return await asyncio.gather(*(one() for _ in range(count)))


def _run(burst: Coroutine[Any, Any, list[Answer]]) -> list[Answer]:
    """Runs the burst on an event loop of its own, leaving the thread's current loop (the test
    session's) alone."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(burst)
    finally:
        loop.close()


def _check(answers: list[Answer], log: str) -> Counter[int | None]:
    statuses = Counter(answer.status for answer in answers)
    assert [a for a in answers if a.error] == [], (statuses, log)
    assert set(statuses) <= {200, 503}, (statuses, log)
    assert [a for a in answers if a.problem] == [], log
    return statuses


def test_overload_is_refused_with_503_and_the_service_carries_on(
    tmp_path: Path, empty_database: str
) -> None:
    env = service_env(
        tmp_path,
        empty_database,
        DATABASE_POOL_MIN="1",
        DATABASE_POOL_MAX=str(POOL_MAX),
        DATABASE_POOL_MAX_WAITING=str(MAX_WAITING),
    )
    with serving(tmp_path, env) as server:
        token = sign_up(server.base_url, "crowd@example.com")
        created = httpx.post(
            f"{server.base_url}/api/tasks", json={"title": "one"}, headers=bearer(token)
        )
        assert created.status_code == 201, created.text

        # A plain burst: whatever the machine's speed, 200s and retryable 503s only.
        plain = _check(_run(_burst(server.base_url, token, CONCURRENT)), server.output())

        # A slow database (the tasks table locked): the connections are all busy, MAX_WAITING
        # requests queue for them, the rest are refused at once.
        locked = threading.Event()
        release = threading.Event()
        answered: list[Answer] = []
        admitted = POOL_MAX + MAX_WAITING

        def hold_lock() -> None:
            with psycopg.connect(empty_database) as connection:
                connection.execute("LOCK TABLE tasks IN ACCESS EXCLUSIVE MODE")
                locked.set()
                deadline = time.monotonic() + MAX_LOCK_SECONDS
                while len(answered) < CONCURRENT - admitted and time.monotonic() < deadline:
                    if release.wait(timeout=0.01):
                        return

        holder = threading.Thread(target=hold_lock)
        holder.start()
        try:
            assert locked.wait(timeout=10)
            slow_answers = _run(_burst(server.base_url, token, CONCURRENT, answered))
        finally:
            release.set()
            holder.join(timeout=30)
        slow = _check(slow_answers, server.output())
        print(f"plain burst {dict(plain)}, burst on a slow database {dict(slow)}")
        # Only the connections' worth and the queue's worth were let in, the others refused as
        # "busy" (with an unbounded queue they would all wait, and get 200s once the lock goes
        # or, after the pool's 5 s wait, a 503 "database unavailable").
        busy = [a for a in slow_answers if a.busy]
        assert len(busy) >= CONCURRENT - admitted, (slow, {a.detail for a in slow_answers})
        assert slow[200] >= POOL_MAX, slow

        # The process is up and serves normally once the load stops.
        assert server.process.poll() is None, server.output()
        started = time.monotonic()
        normal = httpx.get(f"{server.base_url}/api/tasks", headers=bearer(token), timeout=10)
        assert normal.status_code == 200, normal.text
        assert [t["title"] for t in normal.json()["tasks"]] == ["one"]
        assert time.monotonic() - started < NORMAL_ANSWER_SECONDS
        assert httpx.get(f"{server.base_url}/health", timeout=10).status_code == 200
        assert "Traceback" not in server.output(tail=10**7), server.output()
