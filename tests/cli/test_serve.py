"""`todo-api serve`: migrates, serves HTTP (in one process or several), exits 0 on SIGTERM."""

import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from tests.cli.support import PASSWORD, command, free_port, make_env, tables

STARTUP_SECONDS = 30
SHUTDOWN_SECONDS = 15


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        """Sends SIGTERM and returns the exit code (failing if it takes over 15 s)."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=SHUTDOWN_SECONDS)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"no exit within {SHUTDOWN_SECONDS} s of SIGTERM:\n{self.output()}"
            ) from None


def health(base_url: str) -> httpx.Response:
    # A new connection each time (no keep-alive), so any server process may take it.
    return httpx.get(f"{base_url}/health", timeout=5)


@contextmanager
def serving(tmp_path: Path, database_url: str, *args: str) -> Iterator[Server]:
    """`todo-api serve --port <free port> ARGS`, up once /health answers 200."""
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(  # noqa: S603 - the project's own console script
            command("serve", "--port", str(port), *args),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=make_env(tmp_path, database_url),
            cwd=tmp_path,
        )
    server = Server(process, f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            assert process.poll() is None, f"serve exited early:\n{server.output()}"
            assert time.monotonic() < deadline, f"/health not 200 in time:\n{server.output()}"
            try:
                if health(server.base_url).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        yield server
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=SHUTDOWN_SECONDS)


def test_serve_answers_http_and_exits_0_on_sigterm(tmp_path: Path, clean_database: str) -> None:
    with serving(tmp_path, clean_database) as server:
        assert health(server.base_url).json() == {"status": "healthy", "database": "ok"}
        credentials = {"email": "ada@example.com", "password": PASSWORD}
        with httpx.Client(base_url=server.base_url, timeout=10) as client:
            registered = client.post("/api/auth/register", json=credentials)
            assert registered.status_code == 201, registered.text
            logged_in = client.post("/api/auth/login", json=credentials)
            assert logged_in.status_code == 200, logged_in.text
            token = logged_in.json()["access_token"]
            me = client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
            assert me.status_code == 200, me.text
            assert me.json()["email"] == "ada@example.com"

        assert server.stop() == 0, server.output()


def test_serve_applies_pending_migrations_first(tmp_path: Path, fresh_database: str) -> None:
    assert tables(fresh_database).isdisjoint({"users", "tasks", "revoked_tokens"})

    with serving(tmp_path, fresh_database) as server:
        assert {"users", "tasks", "revoked_tokens"} <= tables(fresh_database)
        registered = httpx.post(
            f"{server.base_url}/api/auth/register",
            json={"email": "ada@example.com", "password": PASSWORD},
            timeout=10,
        )
        assert registered.status_code == 201, registered.text

        assert server.stop() == 0, server.output()


def test_serve_with_two_workers(tmp_path: Path, clean_database: str) -> None:
    with serving(tmp_path, clean_database, "--workers", "2") as server:
        deadline = time.monotonic() + STARTUP_SECONDS
        while server.output().count("Application startup complete") < 2:
            assert time.monotonic() < deadline, f"two workers not up in time:\n{server.output()}"
            time.sleep(0.2)
        workers = [
            child
            for child in psutil.Process(server.process.pid).children()
            if "spawn_main" in " ".join(child.cmdline())
        ]
        assert len(workers) == 2, server.output()
        # Each worker answers on its own: with the other one frozen, /health still says 200.
        for frozen, answering in [(workers[0], workers[1]), (workers[1], workers[0])]:
            frozen.suspend()
            try:
                for _ in range(3):
                    assert health(server.base_url).status_code == 200
            finally:
                frozen.resume()
            assert answering.is_running()

        assert server.stop() == 0, server.output()
        for worker in workers:
            assert not worker.is_running()
