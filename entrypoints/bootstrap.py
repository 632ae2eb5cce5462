"""The composition root: the one place where adapters are wired into the use cases, shared by
the HTTP app and the command line. Tests override pieces by keyword."""

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import timedelta

from psycopg_pool import AsyncConnectionPool

from adapters.email import EmailValidatorPolicy
from adapters.embedded import start_embedded_postgres
from adapters.password_strength import ZxcvbnStrengthMeter
from adapters.passwords import BcryptHasher
from adapters.postgres.pool import create_pool, open_pool, ping
from adapters.postgres.repositories import (
    PostgresLoginAttemptStore,
    PostgresRevocationStore,
    PostgresTaskRepository,
    PostgresUserRepository,
)
from adapters.system import RandomIds, SystemClock
from adapters.tokens import JwtTokenService
from application.accounts import AccountService
from application.ports import Clock, PasswordHasher
from application.tasks import TaskService
from application.throttling import LoginThrottle, ThrottlePolicy
from entrypoints.settings import Settings


@dataclass(frozen=True, slots=True)
class Services:
    accounts: AccountService
    tasks: TaskService
    pool: AsyncConnectionPool

    async def database_reachable(self) -> bool:
        return await ping(self.pool)


@contextmanager
def database_url(settings: Settings) -> Iterator[str]:
    """The configured DATABASE_URL, or the URL of an embedded server started for the block."""
    if settings.database_url is not None:
        yield settings.database_url
        return
    embedded = start_embedded_postgres(settings.data_dir)
    try:
        yield embedded.url
    finally:
        embedded.stop()


def build_services(
    settings: Settings,
    pool: AsyncConnectionPool,
    *,
    clock: Clock | None = None,
    hasher: PasswordHasher | None = None,
) -> Services:
    clock = clock or SystemClock()
    ids = RandomIds()
    throttle = LoginThrottle(
        store=PostgresLoginAttemptStore(pool),
        clock=clock,
        policy=ThrottlePolicy(
            max_failed_logins=settings.login_max_failures,
            lockout=timedelta(minutes=settings.login_lockout_minutes),
            attempts_per_minute=settings.auth_rate_per_minute,
        ),
    )
    accounts = AccountService(
        users=PostgresUserRepository(pool),
        hasher=hasher or BcryptHasher(settings.bcrypt_rounds),
        strength=ZxcvbnStrengthMeter(),
        tokens=JwtTokenService(
            settings.auth_secret, previous_secrets=settings.previous_auth_secrets
        ),
        revocations=PostgresRevocationStore(pool),
        emails=EmailValidatorPolicy(),
        throttle=throttle,
        clock=clock,
        ids=ids,
    )
    tasks = TaskService(tasks=PostgresTaskRepository(pool), clock=clock, ids=ids)
    return Services(accounts=accounts, tasks=tasks, pool=pool)


@asynccontextmanager
async def open_services(
    settings: Settings, url: str, *, wait_for_database: bool = False
) -> AsyncIterator[Services]:
    """Services over an open pool, closed when the block ends. Without wait_for_database the
    pool connects in the background, so a server can start (and answer 503) while the
    database is still down."""
    pool = create_pool(
        url,
        min_size=settings.pool_min_size,
        max_size=max(settings.pool_max_size, settings.pool_min_size),
        timeout=settings.pool_timeout_seconds,
    )
    await open_pool(pool, wait=wait_for_database, timeout=settings.pool_timeout_seconds)
    try:
        yield build_services(settings, pool)
    finally:
        await pool.close()
