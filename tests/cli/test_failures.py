"""Bad arguments and an unreachable database: one line on stderr, a non-zero exit, no traceback.

The commands of each group run at the same time (module-scoped fixtures); each test checks one."""

import pytest

from tests.cli.support import PASSWORD, Result, assert_one_line_failure, make_env, run_all

UNREACHABLE = "postgresql://postgres@127.0.0.1:1/x"

BAD_ARGUMENTS = {
    "no-command": (),
    "unknown-command": ("frobnicate",),
    "rollback-steps-0": ("rollback", "--steps", "0"),
    "serve-port-99999": ("serve", "--port", "99999"),
    "tasks-list-without-user": ("tasks", "list"),
    "completed-maybe": ("tasks", "list", "--user", "ada@example.com", "--completed", "maybe"),
}

UNREACHABLE_COMMANDS = {
    "migrate": (("migrate",), ""),
    "migrations": (("migrations",), ""),
    "users-create": (("users", "create", "ada@example.com"), PASSWORD + "\n"),
}


@pytest.fixture(scope="module")
def bad_argument_results(
    tmp_path_factory: pytest.TempPathFactory, database_url: str
) -> dict[str, Result]:
    cwd = tmp_path_factory.mktemp("bad-arguments")
    commands = {name: (args, "") for name, args in BAD_ARGUMENTS.items()}
    return run_all(commands, env=make_env(cwd, database_url), cwd=cwd, timeout=60)


@pytest.fixture(scope="module")
def unreachable_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Result]:
    cwd = tmp_path_factory.mktemp("unreachable")
    return run_all(UNREACHABLE_COMMANDS, env=make_env(cwd, UNREACHABLE), cwd=cwd, timeout=60)


@pytest.mark.parametrize("case", BAD_ARGUMENTS)
def test_bad_arguments(bad_argument_results: dict[str, Result], case: str) -> None:
    result = bad_argument_results[case]

    assert_one_line_failure(result)
    assert result.stdout == ""


@pytest.mark.parametrize("case", UNREACHABLE_COMMANDS)
def test_an_unreachable_database(unreachable_results: dict[str, Result], case: str) -> None:
    result = unreachable_results[case]

    assert_one_line_failure(result, "database")
    assert result.stdout == ""
    assert result.seconds < 15
