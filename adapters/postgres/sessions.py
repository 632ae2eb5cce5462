"""What every connection todo-api opens tells the server about its session: the application's
name, and the timeouts that bound its statements, lock waits and idle transactions.

Both go in the startup packet, as libpq parameters: no round trip per connection. A pooler in
transaction mode (PgBouncer, Neon's pooled endpoint) refuses the `options` parameter that
carries the timeouts, and a session-level SET through it would leak into other clients' server
sessions; so behind one the timeouts are stored as the role's defaults in the database instead,
which every server session the pooler opens starts with."""

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

APPLICATION_NAME = "todo-api"
log = logging.getLogger("todo_api.database")


@dataclass(frozen=True, slots=True)
class Timeouts:
    """In milliseconds; 0 turns one off, as in PostgreSQL."""

    statement_ms: int = 5_000
    """statement_timeout: within the request's budget (a request waits 5 s for a connection)."""
    lock_ms: int = 2_000
    """lock_timeout: a statement that waits that long for a row or table lock gives up."""
    idle_in_transaction_ms: int = 30_000
    """idle_in_transaction_session_timeout: the server ends a session whose transaction has
    been left open and idle that long, releasing its locks."""

    def settings(self) -> dict[str, int]:
        return {
            "statement_timeout": self.statement_ms,
            "lock_timeout": self.lock_ms,
            "idle_in_transaction_session_timeout": self.idle_in_transaction_ms,
        }

    def for_migrations(self) -> "Timeouts":
        """A migration may run (and idle in its transaction) for as long as it needs, but never
        queues behind other sessions' locks for longer than lock_ms: while it waits for a
        table, every request that needs the table waits behind it."""
        return Timeouts(statement_ms=0, lock_ms=self.lock_ms, idle_in_transaction_ms=0)


DEFAULT_TIMEOUTS = Timeouts()
NO_TIMEOUTS = Timeouts(statement_ms=0, lock_ms=0, idle_in_transaction_ms=0)
"""Sent, not left out: a role's stored defaults would apply otherwise."""


def session_parameters(url: str, timeouts: Timeouts | None) -> dict[str, str]:
    """libpq parameters to pass along with url: the application's name unless the URL (or
    PGAPPNAME) gives one; and, unless timeouts is None, `options` setting them, followed by any
    options of the URL's own (or PGOPTIONS), which so win."""
    parameters = {"fallback_application_name": APPLICATION_NAME}
    if timeouts is not None:
        ours = " ".join(f"-c {name}={value}" for name, value in timeouts.settings().items())
        theirs = _given(url).get("options") or os.environ.get("PGOPTIONS")
        parameters["options"] = f"{ours} {theirs}" if theirs else ours
    return parameters


def _given(url: str) -> dict[str, Any]:
    try:
        return conninfo_to_dict(url)
    except psycopg.ProgrammingError:  # a malformed URL: connecting will say so
        return {}


def refuses_options(error: BaseException) -> bool:
    """Whether a failed connection was refused for its `options` startup parameter, as PgBouncer
    ("unsupported startup parameter: options"; since 1.20 "... in options: lock_timeout") and
    the poolers built on it do."""
    text = str(error)
    return "unsupported startup parameter" in text and "options" in text


class _Refusals:
    """The URLs whose server refused our options once, so that later connections to them go
    without, rather than fail once each first; and the warning said once per URL."""

    def __init__(self) -> None:
        self._urls: set[str] = set()

    def __contains__(self, url: str) -> bool:
        return url in self._urls

    def add(self, url: str, error: BaseException) -> None:
        if url in self._urls:
            return
        self._urls.add(url)
        log.warning(
            "the database refused the options startup parameter (%s): a connection pooler? "
            "Its sessions run without todo-api's statement_timeout, lock_timeout and "
            "idle_in_transaction_session_timeout; set DATABASE_URL_UNPOOLED to the database's "
            "direct URL so that they are stored as the role's defaults",
            _first_line(error),
        )


REFUSED = _Refusals()


def without_options(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """parameters without the options we added: the URL's own, if any, apply again."""
    return {name: value for name, value in parameters.items() if name != "options"}


def connect(url: str, timeouts: Timeouts | None, **kwargs: Any) -> psycopg.Connection[Any]:
    """A blocking connection with the session's parameters; without its timeouts if the server
    refuses them."""
    parameters = {**kwargs, **session_parameters(url, timeouts)}
    if url in REFUSED:
        parameters = without_options(parameters)
    try:
        return psycopg.connect(url, **parameters)
    except psycopg.OperationalError as error:
        if "options" not in parameters or not refuses_options(error):
            raise
        REFUSED.add(url, error)
    return psycopg.connect(url, **without_options(parameters))


def store_as_role_defaults(connection: psycopg.Connection[Any], timeouts: Timeouts) -> list[str]:
    """Makes the timeouts the defaults of the connection's role in its database, for the
    sessions a pooler opens (an ordinary role may set its own). Changes only what differs, so
    that the catalog is not written at every start; returns the settings changed."""
    current = connection.execute(
        "SELECT unnest(setconfig) FROM pg_db_role_setting"
        " WHERE setrole = (SELECT oid FROM pg_roles WHERE rolname = current_user)"
        " AND setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())"
    ).fetchall()
    stored = dict(str(row[0]).partition("=")[::2] for row in current)
    row = connection.execute("SELECT current_database()").fetchone()
    assert row is not None
    changed = []
    for name, value in timeouts.settings().items():
        if stored.get(name) == str(value):
            continue
        connection.execute(
            sql.SQL("ALTER ROLE CURRENT_USER IN DATABASE {} SET {} = {}").format(
                sql.Identifier(row[0]), sql.Identifier(name), sql.Literal(value)
            )
        )
        changed.append(name)
    return changed


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
