"""Configuration of the console script: BETTER_AUTH_SECRET rules, the generated secret, and the
.env file of the working directory (which the process environment overrides)."""

import stat
from pathlib import Path

from tests.cli.support import MIGRATION_IDS, assert_ok, assert_one_line_failure, make_env, run

MIGRATIONS = [f"applied\t{migration}" for migration in MIGRATION_IDS]


def test_a_short_secret_is_refused_naming_the_variable(tmp_path: Path, database_url: str) -> None:
    env = make_env(tmp_path, database_url) | {"BETTER_AUTH_SECRET": "short"}

    result = run(["migrations"], env=env, cwd=tmp_path)

    assert_one_line_failure(result, "BETTER_AUTH_SECRET")
    assert result.stdout == ""


def test_without_a_secret_one_is_generated_once_with_mode_0600(
    tmp_path: Path, database_url: str
) -> None:
    env = make_env(tmp_path, database_url)
    del env["BETTER_AUTH_SECRET"]
    secret_file = tmp_path / "data" / "auth-secret"

    first = assert_ok(run(["migrations"], env=env, cwd=tmp_path))

    assert first.stdout_lines == MIGRATIONS
    assert secret_file.is_file()
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    secret = secret_file.read_text()
    assert len(secret.strip()) >= 32
    assert "BETTER_AUTH_SECRET" in first.stderr  # the warning

    second = assert_ok(run(["migrations"], env=env, cwd=tmp_path))

    assert second.stdout_lines == MIGRATIONS
    assert "BETTER_AUTH_SECRET" not in second.stderr  # nothing generated this time
    assert secret_file.read_text() == secret
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["auth-secret"]


def test_the_env_file_of_the_working_directory_is_read(tmp_path: Path, database_url: str) -> None:
    env = make_env(tmp_path, None)
    del env["BETTER_AUTH_SECRET"]
    (tmp_path / ".env").write_text(f"DATABASE_URL={database_url}\nBETTER_AUTH_SECRET={'e' * 40}\n")

    result = assert_ok(run(["migrations"], env=env, cwd=tmp_path, timeout=60))

    # The session's migrated database, not a new embedded one (which would list them pending).
    assert result.stdout_lines == MIGRATIONS
    # The secret came from the file too: none was generated, no embedded database was started.
    assert not (tmp_path / "data").exists()


def test_the_process_environment_wins_over_the_env_file(tmp_path: Path, database_url: str) -> None:
    env = make_env(tmp_path, database_url)
    (tmp_path / ".env").write_text(
        "DATABASE_URL=postgresql://postgres@127.0.0.1:1/x\nBETTER_AUTH_SECRET=short\n"
    )

    result = assert_ok(run(["migrations"], env=env, cwd=tmp_path))

    assert result.stdout_lines == MIGRATIONS
    assert result.stderr == ""
