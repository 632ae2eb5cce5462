"""The contract of PeriodicJobs, in memory and in PostgreSQL alike; and runners of several
processes (pools) sharing one database.

Each job name is new to the test, so that the session's shared database needs no emptying.
"""

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from adapters.memory import FixedClock, InMemoryPeriodicJobs
from adapters.postgres.jobs import PostgresPeriodicJobs
from adapters.postgres.pool import PostgresDatabase
from adapters.system import SystemClock
from application.ports import PeriodicJobs
from entrypoints.background import BackgroundRunner, PeriodicJob
from tests.integration.support import opened_pool

# Microseconds on purpose: a claim exactly one interval later is due, not a microsecond before.
T0 = datetime(2024, 5, 1, 12, 30, 45, 123456, tzinfo=UTC)
EVERY = timedelta(minutes=10)
TICK = timedelta(microseconds=1)


def a_job() -> str:
    return f"job-{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=["memory", "postgres"])
async def jobs(request: pytest.FixtureRequest) -> AsyncIterator[PeriodicJobs]:
    if request.param == "memory":
        yield InMemoryPeriodicJobs()
        return
    url: str = request.getfixturevalue("database_url")
    async with opened_pool(url, min_size=1, max_size=8) as pool:
        yield PostgresPeriodicJobs(PostgresDatabase(pool))


async def test_the_first_claim_of_a_job_gets_its_round(jobs: PeriodicJobs) -> None:
    assert await jobs.claim(a_job(), T0, EVERY) is True


async def test_a_job_is_not_due_again_until_its_interval_has_passed(jobs: PeriodicJobs) -> None:
    job = a_job()
    await jobs.claim(job, T0, EVERY)

    assert await jobs.claim(job, T0, EVERY) is False
    assert await jobs.claim(job, T0 + EVERY - TICK, EVERY) is False
    assert await jobs.claim(job, T0 + EVERY, EVERY) is True
    # Counted from the claim that got the round, not from the ones that did not.
    assert await jobs.claim(job, T0 + 2 * EVERY - TICK, EVERY) is False
    assert await jobs.claim(job, T0 + 2 * EVERY, EVERY) is True


async def test_a_claim_late_by_a_while_moves_the_next_round_after_it(jobs: PeriodicJobs) -> None:
    job = a_job()
    await jobs.claim(job, T0, EVERY)
    late = T0 + EVERY + timedelta(minutes=7)

    assert await jobs.claim(job, late, EVERY) is True
    assert await jobs.claim(job, late + EVERY - TICK, EVERY) is False
    assert await jobs.claim(job, late + EVERY, EVERY) is True


async def test_each_job_has_rounds_of_its_own(jobs: PeriodicJobs) -> None:
    first, second = a_job(), a_job()
    assert await jobs.claim(first, T0, EVERY) is True

    assert await jobs.claim(second, T0, EVERY) is True
    assert await jobs.claim(second, T0 + timedelta(minutes=1), timedelta(minutes=1)) is True
    assert await jobs.claim(first, T0 + timedelta(minutes=1), EVERY) is False


async def test_the_interval_is_the_callers_a_shorter_one_takes_effect_at_once(
    jobs: PeriodicJobs,
) -> None:
    job = a_job()
    await jobs.claim(job, T0, timedelta(hours=1))

    assert await jobs.claim(job, T0 + timedelta(minutes=5), timedelta(minutes=5)) is True


async def test_of_concurrent_claims_exactly_one_gets_each_round(jobs: PeriodicJobs) -> None:
    job = a_job()
    for round_ in range(10):  # the first round creates the job, the others update it
        now = T0 + round_ * EVERY
        claims = await asyncio.gather(*(jobs.claim(job, now, EVERY) for _ in range(8)))
        assert sorted(claims) == [False] * 7 + [True], round_


# --- PostgreSQL ------------------------------------------------------------------------------


@pytest.fixture
async def postgres_jobs(database_url: str) -> AsyncIterator[PostgresPeriodicJobs]:
    async with opened_pool(database_url, min_size=1, max_size=4) as pool:
        yield PostgresPeriodicJobs(PostgresDatabase(pool))


def claimed_at(database_url: str, job: str) -> datetime | None:
    with psycopg.connect(database_url) as connection:
        row = connection.execute(
            "SELECT claimed_at FROM periodic_jobs WHERE name = %s", (job,)
        ).fetchone()
    return None if row is None else row[0]


async def test_a_claim_is_stored_to_the_microsecond(
    postgres_jobs: PostgresPeriodicJobs, database_url: str
) -> None:
    job = a_job()
    await postgres_jobs.claim(job, T0, EVERY)
    await postgres_jobs.claim(job, T0 + TICK, EVERY)  # not due: changes nothing

    assert claimed_at(database_url, job) == T0


async def test_a_job_row_locked_by_another_session_is_skipped_without_waiting(
    postgres_jobs: PostgresPeriodicJobs, database_url: str
) -> None:
    job = a_job()
    await postgres_jobs.claim(job, T0, EVERY)
    with psycopg.connect(database_url) as holder:
        # As a concurrent claim holds the row for its statement; here for as long as we like.
        holder.execute("SELECT FROM periodic_jobs WHERE name = %s FOR UPDATE", (job,))

        async with asyncio.timeout(2):
            assert await postgres_jobs.claim(job, T0 + EVERY, EVERY) is False

        holder.rollback()
    assert await postgres_jobs.claim(job, T0 + EVERY, EVERY) is True


async def test_claims_through_separate_pools_get_one_round_each_interval(
    database_url: str,
) -> None:
    job = a_job()
    async with (
        opened_pool(database_url, min_size=2, max_size=2) as one,
        opened_pool(database_url, min_size=2, max_size=2) as other,
    ):
        processes = [PostgresPeriodicJobs(PostgresDatabase(p)) for p in (one, other)]
        for round_ in range(5):
            now = T0 + round_ * EVERY
            claims = await asyncio.gather(
                *(jobs.claim(job, now, EVERY) for jobs in processes for _ in range(2))
            )
            assert claims.count(True) == 1, round_


# --- runners of two processes on one database -------------------------------------------------


class Recorded:
    def __init__(self) -> None:
        self.runs: list[tuple[str, datetime]] = []

    def job(self, process: str, name: str, every: timedelta) -> PeriodicJob:
        async def run(now: datetime) -> None:
            self.runs.append((process, now))

        return PeriodicJob(name, every, run)


@asynccontextmanager
async def two_runners(
    database_url: str, job: str, every: timedelta, clock: Callable[[], FixedClock | SystemClock]
) -> AsyncIterator[tuple[Recorded, list[BackgroundRunner]]]:
    recorded = Recorded()
    async with (
        opened_pool(database_url, min_size=1, max_size=2) as one,
        opened_pool(database_url, min_size=1, max_size=2) as other,
    ):
        yield (
            recorded,
            [
                BackgroundRunner(
                    [recorded.job(process, job, every)],
                    claims=PostgresPeriodicJobs(PostgresDatabase(pool)),
                    clock=clock(),
                )
                for process, pool in (("one", one), ("other", other))
            ],
        )


async def test_two_runners_on_one_database_run_a_job_once_per_interval_between_them(
    database_url: str,
) -> None:
    job, clock = a_job(), FixedClock(T0)
    async with two_runners(database_url, job, EVERY, lambda: clock) as (recorded, runners):
        for step in range(7):  # ticking twice an interval, both at once
            clock.set(T0 + step * EVERY / 2)
            await asyncio.gather(*(runner.tick() for runner in runners))

        assert [now for _, now in recorded.runs] == [T0 + n * EVERY for n in range(4)]


async def test_two_runners_running_on_one_database_never_run_a_job_twice_in_an_interval(
    database_url: str,
) -> None:
    job, every = a_job(), timedelta(milliseconds=200)
    async with two_runners(database_url, job, every, SystemClock) as (recorded, runners):
        async with runners[0].running(), runners[1].running():
            await asyncio.sleep(1.5)

        moments = sorted(now for _, now in recorded.runs)
        assert len(moments) >= 3, recorded.runs
        gaps = [later - earlier for earlier, later in itertools.pairwise(moments)]
        assert all(gap >= every for gap in gaps), recorded.runs
