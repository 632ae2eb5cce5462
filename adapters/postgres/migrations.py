"""Schema migrations with yoyo: the SQL files in migrations/, each with its rollback."""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from yoyo import get_backend, read_migrations

from adapters.postgres import sessions
from adapters.postgres.sessions import DEFAULT_TIMEOUTS, NO_TIMEOUTS, Timeouts
from application.errors import StatementTimedOut, StorageUnavailable

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


@dataclass(frozen=True, slots=True)
class MigrationStatus:
    id: str
    applied: bool


def _yoyo_url(database_url: str) -> str:
    # yoyo picks its driver from the scheme; psycopg 3 is "postgresql+psycopg".
    scheme, _, rest = database_url.partition("://")
    if scheme not in ("postgres", "postgresql", "postgresql+psycopg"):
        raise ValueError(f"DATABASE_URL must be a postgresql:// URL, not {scheme}://")
    return "postgresql+psycopg://" + rest


def _with_parameters(url: str, parameters: dict[str, str]) -> str:
    # yoyo hands the query's parameters to psycopg.connect as they are.
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True)) | parameters
    return urlunsplit(parts._replace(query=urlencode(query)))


# Any fixed number will do, as long as every todo-api process uses the same one.
_MIGRATIONS_LOCK = 7_405_216_381
log = logging.getLogger("todo_api")


class Migrator:
    """Migrations run with no statement_timeout (a long one must not be cut off), and with the
    lock_timeout of timeouts: a migration waiting for a table makes every request that needs
    it wait behind it, so it gives up instead (StatementTimedOut) and can be run again.

    With store_as_role_defaults, apply() also makes timeouts the defaults of the URL's role in
    its database, for the sessions of a pooler that cannot carry them itself: the URL must
    then log in as the role the pooled connections use."""

    def __init__(
        self,
        database_url: str,
        directory: Path = MIGRATIONS_DIR,
        *,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        store_as_role_defaults: bool = False,
    ) -> None:
        _yoyo_url(database_url)  # refused at once if yoyo cannot take it
        self._database_url = database_url
        self._directory = directory
        self._timeouts = timeouts
        self._store_as_role_defaults = store_as_role_defaults

    def apply(self) -> list[str]:
        """Applies every pending migration; returns their ids. Safe when several processes race:
        one applies them while the others wait, however long that takes."""
        with _lock_waits_timed(), self._exclusively() as locked:
            with self._backend() as (backend, migrations), backend.lock():
                pending = backend.to_apply(migrations)
                backend.apply_migrations(pending)
            if self._store_as_role_defaults:
                self._store_role_defaults(locked)
            return [m.id for m in pending]

    def _store_role_defaults(self, locked: psycopg.Connection[Any]) -> None:
        # Under the migrations' lock: two processes starting at once would otherwise update
        # the same catalog row concurrently, and one of them fail.
        try:
            with locked.transaction():  # a savepoint: a refusal leaves the lock's transaction
                changed = sessions.store_as_role_defaults(locked, self._timeouts)
        except psycopg.errors.InsufficientPrivilege as error:
            log.warning(
                "cannot store the timeouts as this role's defaults (%s): pooled connections run "
                "without them",
                str(error).strip().splitlines()[0],
            )
            return
        for name in changed:
            log.info("stored %s as this role's default in this database", name)

    def rollback(self, steps: int = 1) -> list[str]:
        """Rolls back the newest `steps` applied migrations; returns their ids."""
        with (
            _lock_waits_timed(),
            self._exclusively(),
            self._backend() as (backend, migrations),
            backend.lock(),
        ):
            newest_first = backend.to_rollback(migrations)[:steps]
            backend.rollback_migrations(newest_first)
            return [m.id for m in newest_first]

    @contextmanager
    def _exclusively(self) -> Iterator[psycopg.Connection[Any]]:
        """Holds a PostgreSQL advisory lock for the block. Unlike yoyo's own lock (a row that
        a killed process leaves behind, and that others give up on after ten seconds), the
        server releases it when its holder's transaction ends, and waiters wait for good. Under
        it, a yoyo lock row can only be a killed run's leftover, and is cleared.

        The lock is transaction-scoped, taken in a transaction kept open around the whole run:
        a pooler in transaction mode (PgBouncer, Neon's pooled endpoint) keeps the server
        session pinned to us for exactly that long, and the lock ends with the transaction
        (or with that session, when the pooler drops it after we vanish mid-transaction). A
        session-level lock would stay behind on a pooled server session that outlives us,
        and the next migration routed to another one would wait for it for ever.

        Its session has no timeouts at all: it waits for another run's lock for as long as that
        run takes, and keeps its transaction open, idle, for the whole of its own."""
        try:
            connection = sessions.connect(
                self._database_url, NO_TIMEOUTS, autocommit=True, prepare_threshold=None
            )
        except psycopg.OperationalError as error:
            raise StorageUnavailable() from error
        with connection, connection.transaction():
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATIONS_LOCK,))
            with self._backend() as (backend, _):  # opening it creates yoyo's lock table
                backend.break_lock()
            yield connection

    def status(self) -> list[MigrationStatus]:
        with _lock_waits_timed(), self._backend() as (backend, migrations):
            applied = {m.id for m in migrations if backend.is_applied(m)}
            return [MigrationStatus(m.id, m.id in applied) for m in migrations]

    def _backend(self) -> "_Backend":
        return _Backend(self._database_url, self._timeouts.for_migrations(), self._directory)


@contextmanager
def _lock_waits_timed() -> Iterator[None]:
    # Whether yoyo's bookkeeping or a migration itself waited: the same answer, try again later.
    try:
        yield
    except psycopg.errors.LockNotAvailable as error:
        raise StatementTimedOut() from error


class _Backend:
    """Opens a yoyo backend, its session named and timed as the migrations' (without the
    timeouts where they are refused), and turns a failed connection into StorageUnavailable."""

    def __init__(self, database_url: str, timeouts: Timeouts, directory: Path) -> None:
        self._database_url = database_url
        self._timeouts = timeouts
        self._directory = directory
        self._backend: Any = None

    def __enter__(self) -> tuple[Any, Any]:
        url = self._database_url
        parameters = sessions.session_parameters(url, self._timeouts)
        try:
            if url in sessions.REFUSED:
                parameters = sessions.without_options(parameters)
            try:
                self._backend = get_backend(_with_parameters(_yoyo_url(url), parameters))
            except psycopg.OperationalError as error:
                if "options" not in parameters or not sessions.refuses_options(error):
                    raise
                sessions.REFUSED.add(url, error)
                parameters = sessions.without_options(parameters)
                self._backend = get_backend(_with_parameters(_yoyo_url(url), parameters))
        except psycopg.OperationalError as error:
            raise StorageUnavailable() from error
        # A pooler in transaction mode may hand each statement to another server session,
        # which would not know a statement prepared on the last one.
        self._backend.connection.prepare_threshold = None
        return self._backend, read_migrations(str(self._directory))

    def __exit__(self, *exc_info: object) -> None:
        if self._backend is not None:
            self._backend.connection.close()
