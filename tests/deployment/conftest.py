"""Fixtures of the deployment tests, each started once per session: a PgBouncer in transaction
mode in front of the session's test PostgreSQL, and a PostgreSQL server that speaks TLS only."""

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from adapters.postgres.migrations import Migrator
from tests.deployment.support import (
    REQUIRE_PGBOUNCER,
    Authority,
    PgBouncer,
    TlsCluster,
    database_name,
    pgbouncer_binary,
)


@pytest.fixture(scope="session")
def pgbouncer(server_url: str) -> Iterator[PgBouncer]:
    binary = pgbouncer_binary()
    if binary is None:
        if os.environ.get(REQUIRE_PGBOUNCER):
            pytest.fail(f"pgbouncer is not installed, and {REQUIRE_PGBOUNCER} requires it")
        pytest.skip("pgbouncer is not installed (Debian: apt-get install pgbouncer)")
    bouncer = PgBouncer.start(binary, server_url)
    try:
        yield bouncer
    finally:
        bouncer.stop()


@dataclass(frozen=True)
class Database:
    """One database reached two ways: through the pooler and directly."""

    pooled: str
    direct: str


@pytest.fixture
def pooled_database(pgbouncer: PgBouncer, create_database: Callable[[], str]) -> Database:
    """A new empty database (no migration applied), through the pooler and directly."""
    direct = create_database()
    return Database(pooled=pgbouncer.url(database_name(direct)), direct=direct)


@pytest.fixture(scope="session")
def migrated_pooled_database(pgbouncer: PgBouncer, create_database: Callable[[], str]) -> Database:
    """A database shared by the session's pooled tests, migrated through the pooler."""
    direct = create_database()
    database = Database(pooled=pgbouncer.url(database_name(direct)), direct=direct)
    Migrator(database.pooled).apply()
    return database


@dataclass(frozen=True)
class Tls:
    server: TlsCluster
    database: str
    root_certificate: Path
    """The certificate of the authority that signed the server's."""
    wrong_root_certificate: Path
    """The certificate of another authority."""

    def url(self, **parameters: str) -> str:
        return self.server.tls_url(self.database, **parameters)


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tls]:
    certificates = tmp_path_factory.mktemp("certificates")
    server = TlsCluster.create()
    try:
        authority = Authority.create("todo-api test authority")
        server.start_with(authority)
        yield Tls(
            server=server,
            database=database_name(server.create_database("todo_tls")),
            root_certificate=authority.write_certificate(certificates / "root.crt"),
            wrong_root_certificate=Authority.create("someone else").write_certificate(
                certificates / "wrong-root.crt"
            ),
        )
    finally:
        server.destroy()
