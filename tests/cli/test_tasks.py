"""`todo-api tasks add --user EMAIL TITLE [--description D]` and
`todo-api tasks list --user EMAIL [--completed true/false]`."""

import pytest

from tests.cli.support import RunCli, assert_ok, assert_one_line_failure, query, register


def listed_titles(result_stdout: str) -> list[str]:
    """The titles of `tasks list` output: id, [x] or [ ], created_at, title, tab-separated."""
    return [line.split("\t")[-1] for line in result_stdout.splitlines()]


def add_task(database_url: str, user_id: str, title: str, *, completed: bool = False) -> None:
    query(
        database_url,
        "INSERT INTO tasks (id, title, user_id, completed, created_at) "
        "VALUES (gen_random_uuid(), %s, %s, %s, clock_timestamp())",
        (title, user_id, completed),
    )


def test_add_stores_a_trimmed_title_that_list_shows(cli: RunCli, clean_database: str) -> None:
    ada = register(clean_database, "ada@example.com")

    added = assert_ok(
        cli("tasks", "add", "--user", "ADA@example.com", "  Buy milk  ", "--description", "2 l")
    )

    assert "Buy milk" in added.stdout
    assert query(
        clean_database, "SELECT title, description, completed, user_id::text FROM tasks"
    ) == [("Buy milk", "2 l", False, ada)]
    listed = assert_ok(cli("tasks", "list", "--user", "ada@example.com"))
    assert len(listed.stdout_lines) == 1
    task_id, mark, _created_at, title = listed.stdout_lines[0].split("\t")
    assert title == "Buy milk"
    assert mark == "[ ]"
    assert query(clean_database, "SELECT id::text FROM tasks") == [(task_id,)]


@pytest.mark.parametrize(
    ("completed", "expected"),
    [("true", ["done"]), ("false", ["newest open", "open"])],
)
def test_list_filters_on_completed(
    cli: RunCli, clean_database: str, completed: str, expected: list[str]
) -> None:
    ada = register(clean_database, "ada@example.com")
    grace = register(clean_database, "grace@example.com")
    add_task(clean_database, ada, "open")
    add_task(clean_database, ada, "done")
    add_task(clean_database, ada, "newest open")
    add_task(clean_database, grace, "grace's, done")
    add_task(clean_database, grace, "grace's, open")
    query(clean_database, "UPDATE tasks SET completed = true WHERE title LIKE '%done'")

    result = assert_ok(cli("tasks", "list", "--user", "ada@example.com", "--completed", completed))

    assert listed_titles(result.stdout) == expected
    mark = "[x]" if completed == "true" else "[ ]"
    assert all(line.split("\t")[1] == mark for line in result.stdout_lines)


@pytest.mark.parametrize(
    "args",
    [
        ("tasks", "add", "--user", "nobody@example.com", "A task"),
        ("tasks", "list", "--user", "nobody@example.com"),
    ],
    ids=["add", "list"],
)
def test_an_unknown_user_fails(cli: RunCli, clean_database: str, args: tuple[str, ...]) -> None:
    register(clean_database, "ada@example.com")

    result = cli(*args)

    assert_one_line_failure(result)
    assert result.stdout == ""
    assert query(clean_database, "SELECT count(*) FROM tasks") == [(0,)]
