"""Background work of a serving process: periodic jobs, each round run by one process of the
service however many serve (the rounds are claimed in the database)."""

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from application.errors import RetryLater
from application.ports import Clock, PeriodicJobs
from entrypoints.bootstrap import Services
from entrypoints.settings import Settings

log = logging.getLogger("todo_api.background")

JITTER = 0.1
"""Each pause lasts the shortest interval plus up to this fraction of it more: never less, so
that a process's next tick finds due the job it claimed, and processes started together
drift apart."""


@dataclass(frozen=True, slots=True)
class PeriodicJob:
    name: str
    """Shared by every process: the rounds are claimed under it."""
    every: timedelta
    run: Callable[[datetime], Awaitable[object]]
    """Given the moment of the claim; what it returns is logged. Must finish within `every`."""


def background_jobs(services: Services, settings: Settings) -> list[PeriodicJob]:
    """Every periodic job of a serving process."""
    jobs = []
    if settings.housekeeping_interval_seconds:
        jobs.append(
            PeriodicJob(
                "housekeeping",
                timedelta(seconds=settings.housekeeping_interval_seconds),
                services.housekeeping.purge_expired,
            )
        )
    return jobs


class BackgroundRunner:
    """Runs the due jobs, then pauses, until stopped: one asyncio task per process."""

    def __init__(self, jobs: Sequence[PeriodicJob], *, claims: PeriodicJobs, clock: Clock) -> None:
        self._jobs = tuple(jobs)
        self._claims = claims
        self._clock = clock

    async def tick(self) -> None:
        """Claims each job's round and runs the jobs it got, one after another. A job that
        fails (or cannot be claimed, the database down) is logged and left to the next tick;
        tick itself never raises."""
        for job in self._jobs:
            started = time.monotonic()
            # A hung run would hold up this process's later jobs for good.
            deadline = asyncio.timeout(job.every.total_seconds())
            try:
                now = self._clock.now()
                if not await self._claims.claim(job.name, now, job.every):
                    continue
                async with deadline:
                    outcome = await job.run(now)
            except RetryLater as error:  # the database down, most likely: no traceback
                reason = error.__cause__ or error
                first_line = str(reason).strip().partition("\n")[0]
                log.warning(
                    "background job %s failed, tried again later: %s: %s",
                    job.name,
                    type(reason).__name__,
                    first_line,
                    extra={"job": job.name},
                )
            except Exception:
                if deadline.expired():
                    log.warning(
                        "background job %s ran past its interval and was stopped",
                        job.name,
                        extra={"job": job.name},
                    )
                else:
                    log.exception("background job %s failed", job.name, extra={"job": job.name})
            else:
                log.info(
                    "background job %s done",
                    job.name,
                    extra={
                        "job": job.name,
                        "outcome": outcome,
                        "duration_ms": round((time.monotonic() - started) * 1000, 1),
                    },
                )

    async def run(self) -> None:
        """Ticks until cancelled, the first tick at once."""
        if not self._jobs:
            return
        shortest = min(job.every for job in self._jobs).total_seconds()
        while True:
            await self.tick()
            await asyncio.sleep(shortest * (1 + JITTER * random.random()))  # noqa: S311 - not a secret

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Runs in the background for the block; when it ends, a job in the middle of its run
        is cancelled, and the runner has stopped once the block is left."""
        task = asyncio.create_task(self.run(), name="background jobs")
        try:
            yield
        finally:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # the block itself is being cancelled, not only the runner


@asynccontextmanager
async def background_work(services: Services, settings: Settings) -> AsyncIterator[None]:
    """The process's background jobs over its services, running for the block."""
    runner = BackgroundRunner(
        background_jobs(services, settings), claims=services.periodic_jobs, clock=services.clock
    )
    async with runner.running():
        yield
