"""Fixtures of the fault-injection tests: PostgreSQL servers of their own, which a test may
stop and start, and the `faults` marker (`pytest -m faults` runs only these tests; they also run
in the plain `uv run pytest`)."""

import contextlib
import secrets
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.faults.support import Cluster, postgres_servers_of, wait_until_gone


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "faults: injects a fault (database down, overload, SIGTERM, concurrent start, crash) "
        "into a real `todo-api serve` process and its own PostgreSQL server",
    )


@pytest.fixture(scope="session")
def shared_cluster() -> Iterator[Cluster]:
    """A PostgreSQL server for the fault tests that leave it running (each in databases of its
    own); deleted at the end of the session."""
    cluster = Cluster.create()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def empty_database(shared_cluster: Cluster) -> str:
    """The URL of a new, empty database (no migration applied) on the shared server."""
    return shared_cluster.create_database(f"faults_{secrets.token_hex(6)}")


@pytest.fixture
def own_cluster() -> Iterator[Cluster]:
    """A running PostgreSQL server for this test alone, which it may stop and start."""
    cluster = Cluster.create()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """TODO_DATA_DIR of the test's servers (tmp_path/data, as service_env sets it); an embedded
    PostgreSQL a failed test leaves running there is stopped at the end."""
    yield tmp_path / "data"
    leftovers = postgres_servers_of(tmp_path / "data")
    for process in leftovers:
        with contextlib.suppress(psutil.Error):
            process.terminate()
    for process in wait_until_gone(leftovers, timeout=10):
        with contextlib.suppress(psutil.Error):
            process.kill()
