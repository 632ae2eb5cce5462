"""Helpers of the command-line tests: run the real `todo-api` console script as a subprocess in
an empty working directory with an explicit environment, and look at the database directly."""

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from adapters.postgres.migrations import MIGRATIONS_DIR
from application.errors import InvalidCredentials
from entrypoints.bootstrap import open_services
from entrypoints.settings import Settings

TODO_API = Path(sys.executable).parent / "todo-api"
SECRET = "c" * 40
PASSWORD = "correct horse battery"
TIMEOUT_SECONDS = 60
# Variables of the service that must come from the test, never from the developer's shell.
SERVICE_VARIABLES = (
    "DATABASE_URL",
    "BETTER_AUTH_SECRET",
    "TODO_DATA_DIR",
    "CORS_ORIGINS",
    "BCRYPT_ROUNDS",
    "DATABASE_POOL_MIN",
    "DATABASE_POOL_MAX",
    "BETTER_AUTH_SECRET_PREVIOUS",
    "LOGIN_MAX_FAILURES",
    "LOGIN_LOCKOUT_MINUTES",
    "AUTH_RATE_PER_MINUTE",
    "DATABASE_STATEMENT_TIMEOUT_MS",
    "DATABASE_LOCK_TIMEOUT_MS",
    "DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS",
)

# Every migration id, oldest first (the files of migrations/, without their rollbacks).
MIGRATION_IDS = sorted(
    path.name.removesuffix(".sql")
    for path in MIGRATIONS_DIR.glob("*.sql")
    if not path.name.endswith(".rollback.sql")
)


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    """How long the process ran."""

    @property
    def stdout_lines(self) -> list[str]:
        return self.stdout.splitlines()

    @property
    def stderr_lines(self) -> list[str]:
        return self.stderr.splitlines()


RunCli = Callable[..., Result]
"""`cli(*args, stdin="", timeout=...)`: runs `todo-api ARGS` and returns its Result."""


def assert_ok(result: Result) -> Result:
    assert result.returncode == 0, result
    assert "Traceback" not in result.stderr, result.stderr
    return result


def assert_one_line_failure(result: Result, *fragments: str) -> str:
    """A non-zero exit, exactly one non-empty line on stderr and no traceback; returns the line.
    Each fragment must appear in it (case-insensitively)."""
    assert result.returncode != 0, result
    assert "Traceback" not in result.stderr, result.stderr
    assert len(result.stderr_lines) == 1, result.stderr
    line = result.stderr_lines[0]
    assert line.strip(), result.stderr
    for fragment in fragments:
        assert fragment.lower() in line.lower(), line
    return line


def make_env(tmp_path: Path, database_url: str | None) -> dict[str, str]:
    """A copy of this process's environment for the console script: the given database (None:
    no DATABASE_URL, so the embedded default), a valid secret, fast bcrypt, a private data dir."""
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARIABLES}
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    env["BETTER_AUTH_SECRET"] = SECRET
    env["BCRYPT_ROUNDS"] = "4"
    env["TODO_DATA_DIR"] = str(tmp_path / "data")
    return env


def command(*args: str) -> list[str]:
    return [str(TODO_API), *args]


def run(
    args: list[str] | tuple[str, ...],
    *,
    env: Mapping[str, str],
    cwd: Path,
    stdin: str = "",
    timeout: float = TIMEOUT_SECONDS,
) -> Result:
    started = time.monotonic()
    completed = subprocess.run(  # noqa: S603 - the project's own console script
        command(*args),
        input=stdin,
        capture_output=True,
        text=True,
        env=dict(env),
        cwd=cwd,
        timeout=timeout,
        check=False,
    )
    seconds = time.monotonic() - started
    return Result(completed.returncode, completed.stdout, completed.stderr, seconds)


def run_all(
    commands: Mapping[str, tuple[tuple[str, ...], str]],
    *,
    env: Mapping[str, str],
    cwd: Path,
    timeout: float = TIMEOUT_SECONDS,
) -> dict[str, Result]:
    """Runs independent commands (name -> (args, stdin)) at the same time; their results by name.
    Most of a run is the interpreter starting, so this saves seconds on a slow machine."""
    with ThreadPoolExecutor(max_workers=len(commands)) as pool:
        futures = {
            name: pool.submit(run, args, env=env, cwd=cwd, stdin=stdin, timeout=timeout)
            for name, (args, stdin) in commands.items()
        }
        return {name: future.result() for name, future in futures.items()}


def query(database_url: str, statement: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url, autocommit=True) as connection:
        cursor = connection.execute(statement, params)
        return cursor.fetchall() if cursor.description is not None else []


def tables(database_url: str) -> set[str]:
    """The tables of the service (not yoyo's own bookkeeping tables)."""
    rows = query(
        database_url,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'",
    )
    return {name for (name,) in rows if "yoyo" not in name}


def schema(database_url: str) -> set[tuple[str, ...]]:
    """The service's tables, columns (with type and nullability), indexes and triggers."""
    columns = query(
        database_url,
        "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns "
        "WHERE table_schema = 'public' AND table_name NOT LIKE %s",
        ("%yoyo%",),
    )
    indexes = query(
        database_url,
        "SELECT tablename, indexdef FROM pg_indexes "
        "WHERE schemaname = 'public' AND tablename NOT LIKE %s",
        ("%yoyo%",),
    )
    triggers = query(
        database_url,
        "SELECT tgrelid::regclass::text, pg_get_triggerdef(oid) FROM pg_trigger "
        "WHERE NOT tgisinternal",
    )
    return {tuple(row) for row in [*columns, *indexes, *triggers]}


def _settings(database_url: str) -> Settings:
    return Settings(
        auth_secret=SECRET,
        database_url=database_url,
        bcrypt_rounds=4,
        pool_min_size=1,
        pool_max_size=2,
    )


def can_log_in(database_url: str, email: str, password: str) -> bool:
    """Whether the log-in use case (the one behind POST /api/auth/login) accepts the pair."""

    async def attempt() -> bool:
        settings = _settings(database_url)
        async with open_services(settings, database_url, wait_for_database=True) as services:
            try:
                await services.accounts.log_in(email, password)
            except InvalidCredentials:
                return False
            return True

    return asyncio.run(attempt())


def register(database_url: str, email: str, password: str = PASSWORD) -> str:
    """Registers an account through the use case; returns its id."""

    async def create() -> str:
        settings = _settings(database_url)
        async with open_services(settings, database_url, wait_for_database=True) as services:
            user = await services.accounts.register(email, password)
            return str(user.id)

    return asyncio.run(create())


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
