"""Fixtures of the command-line tests: `todo-api` run as a subprocess over a database of the
session's test server (see tests/conftest.py), in the test's empty temporary directory."""

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli.support import TIMEOUT_SECONDS, Result, RunCli, make_env, run


def _runner(tmp_path: Path, database_url: str) -> RunCli:
    env = make_env(tmp_path, database_url)

    def cli(*args: str, stdin: str = "", timeout: float = TIMEOUT_SECONDS) -> Result:
        return run(args, env=env, cwd=tmp_path, stdin=stdin, timeout=timeout)

    return cli


@pytest.fixture
def fresh_database(create_database: Callable[[], str]) -> str:
    """A new empty database: no migration applied."""
    return create_database()


@pytest.fixture
def fresh_cli(tmp_path: Path, fresh_database: str) -> RunCli:
    """Runs `todo-api ARGS` over `fresh_database`."""
    return _runner(tmp_path, fresh_database)


@pytest.fixture
def cli(tmp_path: Path, clean_database: str) -> RunCli:
    """Runs `todo-api ARGS` over the session's migrated database, emptied before the test."""
    return _runner(tmp_path, clean_database)
