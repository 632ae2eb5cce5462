"""Without DATABASE_URL: an embedded PostgreSQL in TODO_DATA_DIR, started and stopped by each
command, whose data survives from one command to the next."""

from pathlib import Path

import psutil

from tests.cli.support import MIGRATION_IDS, PASSWORD, assert_ok, make_env, run

EMBEDDED_TIMEOUT_SECONDS = 90


def postgres_servers_of(data_dir: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if process.info["name"] == "postgres" and str(data_dir.resolve()) in cmdline:
            found.append(process)
    return found


def test_the_embedded_database_keeps_data_across_commands(tmp_path: Path) -> None:
    env = make_env(tmp_path, None)
    data_dir = tmp_path / "data"

    def todo_api(*args: str, stdin: str = "") -> str:
        result = assert_ok(
            run(args, env=env, cwd=tmp_path, stdin=stdin, timeout=EMBEDDED_TIMEOUT_SECONDS)
        )
        # Each command stops the server it started.
        assert postgres_servers_of(data_dir) == [], result
        return result.stdout

    migrated = todo_api("migrate")
    assert migrated.splitlines() == [f"applied {m}" for m in MIGRATION_IDS]
    assert (data_dir / "postgres" / "PG_VERSION").is_file()

    todo_api("users", "create", "ada@example.com", stdin=PASSWORD + "\n")
    todo_api("tasks", "add", "--user", "ada@example.com", "Survive a restart")

    listed = todo_api("tasks", "list", "--user", "ada@example.com")
    assert [line.split("\t")[-1] for line in listed.splitlines()] == ["Survive a restart"]
