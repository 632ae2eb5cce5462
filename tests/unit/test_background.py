"""The background runner over the in-memory periodic jobs: due jobs run, failures are logged
and outlived, and it stops with the block it runs in."""

import asyncio
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from adapters.memory import FixedClock, InMemoryPeriodicJobs
from adapters.postgres.pool import create_pool
from adapters.system import SystemClock
from application.errors import StorageUnavailable
from entrypoints.background import BackgroundRunner, PeriodicJob, background_jobs
from entrypoints.bootstrap import Services
from entrypoints.settings import Settings

START = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
EVERY = timedelta(minutes=10)


@dataclass
class Job:
    """A job that records the moments it was run with, failing with `fails` while it is set."""

    name: str
    every: timedelta = EVERY
    fails: BaseException | None = None
    runs: list[datetime] = field(default_factory=list)

    async def run(self, now: datetime) -> str:
        self.runs.append(now)
        if self.fails is not None:
            raise self.fails
        return f"run {len(self.runs)}"

    @property
    def periodic(self) -> PeriodicJob:
        return PeriodicJob(self.name, self.every, self.run)


class UnreachableJobs:
    """Periodic jobs in a database that is down."""

    async def claim(self, name: str, now: datetime, every: timedelta) -> bool:
        raise StorageUnavailable()


def runner_of(
    *jobs: Job, claims: InMemoryPeriodicJobs | None = None, clock: FixedClock
) -> BackgroundRunner:
    return BackgroundRunner(
        [job.periodic for job in jobs], claims=claims or InMemoryPeriodicJobs(), clock=clock
    )


async def eventually(condition: Callable[[], bool], timeout: float = 5.0) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


# --- one tick -----------------------------------------------------------------------------


async def test_a_due_job_runs_with_the_moment_of_its_claim_and_its_outcome_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    job, clock = Job("purge"), FixedClock(START)
    caplog.set_level(logging.INFO, "todo_api.background")

    await runner_of(job, clock=clock).tick()

    assert job.runs == [START]
    [record] = caplog.records
    assert (record.levelno, record.getMessage()) == (logging.INFO, "background job purge done")
    assert (getattr(record, "job", None), getattr(record, "outcome", None)) == ("purge", "run 1")


async def test_a_job_runs_again_only_once_its_interval_has_passed() -> None:
    job, clock = Job("purge"), FixedClock(START)
    runner = runner_of(job, clock=clock)
    await runner.tick()

    clock.set(START + EVERY - timedelta(microseconds=1))
    await runner.tick()
    assert job.runs == [START]

    clock.set(START + EVERY)
    await runner.tick()
    assert job.runs == [START, START + EVERY]


async def test_each_job_keeps_its_own_interval() -> None:
    often, rarely = Job("often", timedelta(minutes=1)), Job("rarely", timedelta(hours=1))
    clock = FixedClock(START)
    runner = runner_of(often, rarely, clock=clock)

    for minute in range(3):
        clock.set(START + timedelta(minutes=minute))
        await runner.tick()

    assert len(often.runs) == 3
    assert rarely.runs == [START]


async def test_runners_sharing_the_claims_run_a_job_once_per_interval_between_them() -> None:
    claims, clock = InMemoryPeriodicJobs(), FixedClock(START)
    jobs = [Job("purge") for _ in range(3)]
    runners = [runner_of(job, claims=claims, clock=clock) for job in jobs]

    for step in range(4):
        clock.set(START + step * EVERY / 2)
        await asyncio.gather(*(runner.tick() for runner in runners))

    runs = sorted(moment for job in jobs for moment in job.runs)
    assert runs == [START, START + EVERY]


@pytest.mark.parametrize(
    "failure",
    [StorageUnavailable(), RuntimeError("a bug")],
    ids=["database down", "anything else"],
)
async def test_a_failing_job_is_logged_the_next_jobs_still_run_and_it_runs_again_next_round(
    failure: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    failing, next_one, clock = Job("failing", fails=failure), Job("next"), FixedClock(START)
    runner = runner_of(failing, next_one, clock=clock)

    await runner.tick()  # does not raise

    assert (failing.runs, next_one.runs) == ([START], [START])
    [failed] = [r for r in caplog.records if getattr(r, "job", None) == "failing"]
    assert failed.getMessage().startswith("background job failing failed")
    if isinstance(failure, StorageUnavailable):  # expected in an outage: no traceback
        assert (failed.levelno, failed.exc_info) == (logging.WARNING, None)
    else:
        assert failed.levelno == logging.ERROR
        assert failed.exc_info is not None

    failing.fails = None
    clock.set(START + EVERY)
    await runner.tick()
    assert failing.runs == [START, START + EVERY]


async def test_when_no_round_can_be_claimed_nothing_runs_and_the_tick_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    first, second = Job("first"), Job("second")
    runner = BackgroundRunner(
        [first.periodic, second.periodic], claims=UnreachableJobs(), clock=FixedClock(START)
    )

    await runner.tick()

    assert (first.runs, second.runs) == ([], [])
    assert [(r.levelno, getattr(r, "job", None)) for r in caplog.records] == [
        (logging.WARNING, "first"),
        (logging.WARNING, "second"),
    ]


async def test_a_run_that_outlasts_its_interval_is_cut_short_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cancelled = asyncio.Event()

    async def hangs(now: datetime) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    after = Job("after")
    runner = BackgroundRunner(
        [PeriodicJob("hangs", timedelta(milliseconds=50), hangs), after.periodic],
        claims=InMemoryPeriodicJobs(),
        clock=FixedClock(START),
    )

    await asyncio.wait_for(runner.tick(), timeout=5)

    assert cancelled.is_set()
    assert after.runs == [START]
    [record] = [r for r in caplog.records if getattr(r, "job", None) == "hangs"]
    assert record.levelno == logging.WARNING
    assert record.getMessage() == "background job hangs ran past its interval and was stopped"


# --- running in the background --------------------------------------------------------------


async def test_running_ticks_again_after_each_pause_and_outlives_failures() -> None:
    every = timedelta(milliseconds=50)
    failing = Job("failing", every, fails=StorageUnavailable())
    working = Job("working", every)
    runner = BackgroundRunner(
        [failing.periodic, working.periodic], claims=InMemoryPeriodicJobs(), clock=SystemClock()
    )

    async with runner.running():
        await eventually(lambda: len(failing.runs) >= 3 and len(working.runs) >= 3)

    # Never sooner than the interval: each run was claimed a full interval after the last.
    gaps = [later - earlier for earlier, later in itertools.pairwise(working.runs)]
    assert all(gap >= every for gap in gaps), gaps


async def test_leaving_the_block_stops_the_runner_and_cancels_a_run_in_progress() -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def long_run(now: datetime) -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        finally:
            cancelled.set()

    quick = Job("quick", timedelta(milliseconds=20))
    runner = BackgroundRunner(
        [quick.periodic, PeriodicJob("long", timedelta(minutes=5), long_run)],
        claims=InMemoryPeriodicJobs(),
        clock=SystemClock(),
    )

    async with runner.running():
        await asyncio.wait_for(started.wait(), timeout=5)
    left = time.monotonic()

    assert cancelled.is_set()
    assert [t for t in asyncio.all_tasks() if t.get_name() == "background jobs"] == []
    runs = len(quick.runs)
    await asyncio.sleep(0.1)
    assert len(quick.runs) == runs
    assert time.monotonic() - left < 1


async def test_without_jobs_running_does_nothing() -> None:
    runner = BackgroundRunner([], claims=InMemoryPeriodicJobs(), clock=SystemClock())
    async with runner.running():
        await asyncio.sleep(0)


async def test_a_cancellation_that_comes_while_the_runner_stops_is_not_swallowed() -> None:
    started, stopping = asyncio.Event(), asyncio.Event()

    async def slow_to_stop(now: datetime) -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        finally:
            stopping.set()
            await asyncio.sleep(60)  # cleaning up, until cancelled once more

    runner = BackgroundRunner(
        [PeriodicJob("slow", timedelta(minutes=5), slow_to_stop)],
        claims=InMemoryPeriodicJobs(),
        clock=FixedClock(START),
    )

    async def serve() -> str:
        async with runner.running():
            await started.wait()
        return "went on as if not cancelled"

    serving = asyncio.create_task(serve())
    await asyncio.wait_for(stopping.wait(), timeout=5)
    serving.cancel()

    with pytest.raises(asyncio.CancelledError):
        await serving


# --- the jobs of a serving process --------------------------------------------------------


async def test_a_server_runs_housekeeping_at_its_interval_and_zero_turns_it_off() -> None:
    settings = Settings(auth_secret="s" * 40, housekeeping_interval_seconds=90)
    # Never opened: nothing here connects.
    services = Services(settings, create_pool("postgresql://nobody@127.0.0.1:1/none"))

    [job] = background_jobs(services, settings)
    assert (job.name, job.every) == ("housekeeping", timedelta(seconds=90))
    assert job.run == services.housekeeping.purge_expired

    off = Settings(auth_secret="s" * 40, housekeeping_interval_seconds=0)
    assert background_jobs(services, off) == []
