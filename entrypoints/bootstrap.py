"""The composition root: the one place where adapters are wired into the use cases, shared by
the HTTP app and the command line. Tests override pieces by keyword."""

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import timedelta

from psycopg_pool import AsyncConnectionPool

from adapters.better_auth import BetterAuthTokens, JwksKeys, http_jwks_fetcher
from adapters.email import EmailValidatorPolicy
from adapters.embedded import start_embedded_postgres
from adapters.password_strength import ZxcvbnStrengthMeter
from adapters.passwords import BcryptHasher
from adapters.postgres.idempotency import PostgresIdempotencyStore
from adapters.postgres.identities import PostgresLinkedIdentities
from adapters.postgres.jobs import PostgresPeriodicJobs
from adapters.postgres.pool import PostgresDatabase, create_pool, open_pool
from adapters.postgres.sessions import Timeouts
from adapters.postgres.tasks import PostgresTaskRepository
from adapters.postgres.throttling import PostgresLoginAttemptStore
from adapters.postgres.tokens import PostgresRevocationStore, PostgresTokenSubjects
from adapters.postgres.users import PostgresUserRepository
from adapters.system import RandomIds, SystemClock
from adapters.tokens import LEEWAY, JwtTokenService, TokenKinds
from application.accounts import AccountService
from application.housekeeping import Housekeeping
from application.identities import AccountLinking
from application.ports import Clock, PasswordHasher
from application.tasks import TaskService
from application.throttling import LoginThrottle, ThrottlePolicy
from entrypoints.settings import BetterAuthSettings, Settings


class Services:
    """The use cases, wired to PostgreSQL: built once, shared by every request. Each of their
    statements borrows a pooled connection, or the connection of the atomic block it is in."""

    def __init__(
        self,
        settings: Settings,
        pool: AsyncConnectionPool,
        *,
        clock: Clock | None = None,
        hasher: PasswordHasher | None = None,
    ) -> None:
        self.pool = pool
        clock = clock or SystemClock()
        ids = RandomIds()
        self.database = database = PostgresDatabase(pool)
        # One hasher for the process: its bound on concurrent hashing must be shared.
        self._hasher = hasher or BcryptHasher(settings.bcrypt_rounds)
        self._strength = ZxcvbnStrengthMeter()  # one meter too: its bound must be shared
        throttle_policy = ThrottlePolicy(
            max_failed_logins=settings.login_max_failures,
            lockout=timedelta(minutes=settings.login_lockout_minutes),
            attempts_per_minute=settings.auth_rate_per_minute,
        )
        throttle = LoginThrottle(
            store=PostgresLoginAttemptStore(database), clock=clock, policy=throttle_policy
        )
        users = PostgresUserRepository(database)
        emails = EmailValidatorPolicy()
        own_tokens = JwtTokenService(
            settings.auth_secret, previous_secrets=settings.previous_auth_secrets
        )
        better_auth = settings.better_auth
        self.accounts = AccountService(
            users=users,
            hasher=self._hasher,
            strength=self._strength,
            tokens=TokenKinds(
                own_tokens,
                better_auth=None if better_auth is None else better_auth_tokens(better_auth),
            ),
            revocations=PostgresRevocationStore(database),
            token_subjects=PostgresTokenSubjects(database),
            emails=emails,
            throttle=throttle,
            clock=clock,
            ids=ids,
            linking=None
            if better_auth is None
            else AccountLinking(
                users=users,
                identities=PostgresLinkedIdentities(database),
                transactions=database,
                emails=emails,
                clock=clock,
                ids=ids,
            ),
        )
        self.tasks = TaskService(
            tasks=PostgresTaskRepository(database),
            idempotency=PostgresIdempotencyStore(database),
            transactions=database,
            clock=clock,
            ids=ids,
        )
        self.clock = clock
        self.periodic_jobs = PostgresPeriodicJobs(database)
        self.housekeeping = Housekeeping(
            idempotency=PostgresIdempotencyStore(database),
            revocations=PostgresRevocationStore(database),
            logins=PostgresLoginAttemptStore(database),
            throttle=throttle_policy,
            token_leeway=LEEWAY,
        )

    async def database_reachable(self) -> bool:
        return await self.database.reachable()

    @property
    def password_hashes_waiting(self) -> int:
        return self._hasher.waiting if isinstance(self._hasher, BcryptHasher) else 0

    @property
    def password_strength_checks_waiting(self) -> int:
        return self._strength.waiting


def better_auth_tokens(settings: BetterAuthSettings) -> BetterAuthTokens:
    """Better Auth's tokens, verified with the keys it publishes, cached for the process."""
    return BetterAuthTokens(
        JwksKeys(http_jwks_fetcher(settings.jwks_url)),
        issuer=settings.issuer,
        audience=settings.audience,
    )


def timeouts(settings: Settings) -> Timeouts:
    return Timeouts(
        statement_ms=settings.statement_timeout_ms,
        lock_ms=settings.lock_timeout_ms,
        idle_in_transaction_ms=settings.idle_in_transaction_timeout_ms,
    )


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
    return Services(settings, pool, clock=clock, hasher=hasher)


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
        prepare_threshold=settings.prepare_threshold,
        max_waiting=settings.pool_max_waiting,
        # Through a pooler (the contract: exactly when DATABASE_URL_UNPOOLED is set), the
        # startup packet cannot carry them: the migrations store them as the role's defaults.
        timeouts=None if settings.database_url_unpooled else timeouts(settings),
    )
    await open_pool(pool, wait=wait_for_database, timeout=settings.pool_timeout_seconds)
    try:
        yield build_services(settings, pool)
    finally:
        await pool.close()
