"""`todo-api migrate`, `rollback [--steps N]` and `migrations` on a fresh database.

The expected ids come from the files in migrations/, so that a new migration needs no edit here."""

from pathlib import Path

import psycopg

from adapters.postgres.migrations import Migrator
from tests.cli.support import (
    MIGRATION_IDS,
    RunCli,
    assert_ok,
    assert_one_line_failure,
    make_env,
    run,
    schema,
    tables,
)

NEWEST = MIGRATION_IDS[-1]


def test_there_are_the_migrations_of_the_contract() -> None:
    assert MIGRATION_IDS[:2] == ["0001.users-and-tasks", "0002.revoked-tokens"]


def listing(cli: RunCli) -> list[tuple[str, str]]:
    """`todo-api migrations` as (state, id) pairs."""
    result = assert_ok(cli("migrations"))
    pairs = [line.split("\t") for line in result.stdout_lines]
    assert all(len(pair) == 2 for pair in pairs), result.stdout
    return [(state, migration) for state, migration in pairs]


def applied(database_url: str) -> list[str]:
    return [m.id for m in Migrator(database_url).status() if m.applied]


def rolled_back_ids(stdout: str) -> list[str]:
    assert all(line.startswith("rolled back ") for line in stdout.splitlines()), stdout
    return [line.removeprefix("rolled back ") for line in stdout.splitlines()]


def test_a_fresh_database_lists_every_migration_as_pending(
    fresh_cli: RunCli, fresh_database: str
) -> None:
    assert listing(fresh_cli) == [("pending", m) for m in MIGRATION_IDS]
    assert tables(fresh_database) == set()


def test_migrate_applies_them_all_once(
    fresh_cli: RunCli, fresh_database: str, database_url: str
) -> None:
    first = assert_ok(fresh_cli("migrate"))

    assert first.stdout_lines == [f"applied {m}" for m in MIGRATION_IDS]
    assert {"users", "tasks", "revoked_tokens"} <= tables(fresh_database)
    assert schema(fresh_database) == schema(database_url)  # as migrated by the test session
    assert listing(fresh_cli) == [("applied", m) for m in MIGRATION_IDS]

    again = assert_ok(fresh_cli("migrate"))

    assert again.stdout.strip() == "nothing to apply"
    assert applied(fresh_database) == MIGRATION_IDS


def test_rollback_rolls_back_the_newest_migration_only(
    fresh_cli: RunCli, fresh_database: str
) -> None:
    Migrator(fresh_database).apply()
    before = schema(fresh_database)

    result = assert_ok(fresh_cli("rollback"))

    assert rolled_back_ids(result.stdout) == [NEWEST]
    assert applied(fresh_database) == MIGRATION_IDS[:-1]
    assert schema(fresh_database) != before
    assert {"users", "tasks"} <= tables(fresh_database)


def test_rollback_steps_2_rolls_back_the_two_newest(fresh_cli: RunCli, fresh_database: str) -> None:
    Migrator(fresh_database).apply()
    Migrator(fresh_database).rollback(1)
    newest_rolled_back = schema(fresh_database)
    Migrator(fresh_database).apply()

    result = assert_ok(fresh_cli("rollback", "--steps", "2"))

    assert rolled_back_ids(result.stdout) == MIGRATION_IDS[::-1][:2]
    assert applied(fresh_database) == MIGRATION_IDS[:-2]
    assert schema(fresh_database) != newest_rolled_back


def test_rolling_back_everything_then_migrating_restores_the_schema(
    fresh_cli: RunCli, fresh_database: str
) -> None:
    Migrator(fresh_database).apply()
    migrated = schema(fresh_database)

    rolled_back = assert_ok(fresh_cli("rollback", "--steps", str(len(MIGRATION_IDS))))

    assert rolled_back_ids(rolled_back.stdout) == MIGRATION_IDS[::-1]
    assert applied(fresh_database) == []
    assert tables(fresh_database) == set()

    assert_ok(fresh_cli("migrate"))

    assert schema(fresh_database) == migrated
    assert applied(fresh_database) == MIGRATION_IDS


def test_a_migration_waiting_past_the_lock_timeout_fails_in_one_line_and_runs_later(
    tmp_path: Path, fresh_database: str
) -> None:
    env = make_env(tmp_path, fresh_database) | {"DATABASE_LOCK_TIMEOUT_MS": "300"}
    assert_ok(run(["migrate"], env=env, cwd=tmp_path))

    # yoyo's own bookkeeping, which every run reads and writes, locked by another session.
    with psycopg.connect(fresh_database) as other:
        other.execute("LOCK TABLE _yoyo_migration IN ACCESS EXCLUSIVE MODE")
        failed = run(["migrate"], env=env, cwd=tmp_path, timeout=30)
        other.rollback()

    assert_one_line_failure(failed, "took too long", "lock timeout")
    assert failed.seconds < 10, failed.seconds
    assert assert_ok(run(["migrate"], env=env, cwd=tmp_path)).stdout_lines == ["nothing to apply"]
