"""Schema migrations with yoyo: the SQL files in migrations/, each with its rollback."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from yoyo import get_backend, read_migrations

from application.errors import StorageUnavailable

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


# Any fixed number will do, as long as every todo-api process uses the same one.
_MIGRATIONS_LOCK = 7_405_216_381


class Migrator:
    def __init__(self, database_url: str, directory: Path = MIGRATIONS_DIR) -> None:
        self._database_url = database_url
        self._url = _yoyo_url(database_url)
        self._directory = directory

    def apply(self) -> list[str]:
        """Applies every pending migration; returns their ids. Safe when several processes race:
        one applies them while the others wait, however long that takes."""
        with self._exclusively(), self._backend() as (backend, migrations), backend.lock():
            pending = backend.to_apply(migrations)
            backend.apply_migrations(pending)
            return [m.id for m in pending]

    def rollback(self, steps: int = 1) -> list[str]:
        """Rolls back the newest `steps` applied migrations; returns their ids."""
        with self._exclusively(), self._backend() as (backend, migrations), backend.lock():
            newest_first = backend.to_rollback(migrations)[:steps]
            backend.rollback_migrations(newest_first)
            return [m.id for m in newest_first]

    @contextmanager
    def _exclusively(self) -> Iterator[None]:
        """Holds a PostgreSQL advisory lock for the block. Unlike yoyo's own lock (a row that
        a killed process leaves behind, and that others give up on after ten seconds), the
        server releases it when its holder's transaction ends, and waiters wait for good. Under
        it, a yoyo lock row can only be a killed run's leftover, and is cleared.

        The lock is transaction-scoped, taken in a transaction kept open around the whole run:
        a pooler in transaction mode (PgBouncer, Neon's pooled endpoint) keeps the server
        session pinned to us for exactly that long, and the lock ends with the transaction
        (or with that session, when the pooler drops it after we vanish mid-transaction). A
        session-level lock would stay behind on a pooled server session that outlives us,
        and the next migration routed to another one would wait for it for ever."""
        try:
            connection = psycopg.connect(
                self._database_url, autocommit=True, prepare_threshold=None
            )
        except psycopg.OperationalError as error:
            raise StorageUnavailable() from error
        with connection, connection.transaction():
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATIONS_LOCK,))
            with self._backend() as (backend, _):  # opening it creates yoyo's lock table
                backend.break_lock()
            yield

    def status(self) -> list[MigrationStatus]:
        with self._backend() as (backend, migrations):
            applied = {m.id for m in migrations if backend.is_applied(m)}
            return [MigrationStatus(m.id, m.id in applied) for m in migrations]

    def _backend(self) -> "_Backend":
        return _Backend(self._url, self._directory)


class _Backend:
    """Opens a yoyo backend and turns a failed connection into StorageUnavailable."""

    def __init__(self, url: str, directory: Path) -> None:
        self._url = url
        self._directory = directory
        self._backend: Any = None

    def __enter__(self) -> tuple[Any, Any]:
        try:
            self._backend = get_backend(self._url)
        except psycopg.OperationalError as error:
            raise StorageUnavailable() from error
        # A pooler in transaction mode may hand each statement to another server session,
        # which would not know a statement prepared on the last one.
        self._backend.connection.prepare_threshold = None
        return self._backend, read_migrations(str(self._directory))

    def __exit__(self, *exc_info: object) -> None:
        if self._backend is not None:
            self._backend.connection.close()
