"""`todo-api tasks add --user EMAIL TITLE [--description D] [--priority P] [--due DATE
[--due-time T] [--due-timezone Z]] [--tag T]...` and `todo-api tasks list --user EMAIL` with
the API's filters and sorts."""

import pytest

from tests.cli.support import RunCli, assert_ok, assert_one_line_failure, query, register


def listed_titles(result_stdout: str) -> list[str]:
    """The titles of `tasks list` output: id, [x] or [ ], created_at, priority, due, tags,
    title, tab-separated."""
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
    task_id, mark, _created_at, priority, due, tags, title = listed.stdout_lines[0].split("\t")
    assert (title, priority, due, tags) == ("Buy milk", "none", "-", "-")
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


def test_add_takes_the_priority_due_and_tags_that_list_shows(
    cli: RunCli, clean_database: str
) -> None:
    register(clean_database, "ada@example.com")

    assert_ok(
        cli(
            "tasks", "add", "--user", "ada@example.com", "Board numbers",
            "--priority", "high", "--due", "2026-12-11", "--due-time", "17:30",
            "--due-timezone", "Europe/Lisbon", "--tag", "work", "--tag", "Board",
        )
    )  # fmt: skip

    assert query(
        clean_database,
        "SELECT priority, due_date::text, due_time::text, due_timezone, tag_keys FROM tasks",
    ) == [(3, "2026-12-11", "17:30:00", "Europe/Lisbon", ["board", "work"])]
    listed = assert_ok(cli("tasks", "list", "--user", "ada@example.com"))
    _id, _mark, _created_at, priority, due, tags, title = listed.stdout_lines[0].split("\t")
    assert (priority, due, tags, title) == (
        "high",
        "2026-12-11T17:30:00 Europe/Lisbon",
        "Board,work",
        "Board numbers",
    )


def test_list_takes_the_filters_and_the_sort(cli: RunCli, clean_database: str) -> None:
    register(clean_database, "ada@example.com")
    for title, options in [
        ("Oat milk", ["--priority", "high", "--tag", "home", "--due", "2026-12-10"]),
        ("Report", ["--priority", "medium", "--tag", "work"]),
        ("Old milk", ["--priority", "low", "--tag", "home", "--due", "2026-12-01"]),
    ]:
        assert_ok(cli("tasks", "add", "--user", "ada@example.com", title, *options))

    def listed(*options: str) -> list[str]:
        return listed_titles(
            assert_ok(cli("tasks", "list", "--user", "ada@example.com", *options)).stdout
        )

    assert listed("--tag", "HOME", "--sort", "due") == ["Old milk", "Oat milk"]
    assert listed("--q", "MILK", "--priority", "high") == ["Oat milk"]
    assert listed("--sort=-priority") == ["Oat milk", "Report", "Old milk"]
    assert listed("--has-due", "false") == ["Report"]
    assert listed("--due-after", "2026-12-05") == ["Oat milk"]
    assert listed("--sort", "title") == ["Oat milk", "Old milk", "Report"]


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        (["add", "t", "--due", "2026-02-29"], "due.date"),
        (["add", "t", "--due", "2026-12-10", "--due-timezone", "../../etc/passwd"], "due.timezone"),
        (["add", "t", "--due-time", "10:00"], "--due"),
        (["add", "t", "--tag", "a/b"], "tags.0"),
        (["add", "t", "--priority", "urgent"], "--priority"),
        (["list", "--q", "   "], "q"),
        (["list", "--due-after", "someday"], "--due-after"),
        (["list", "--sort", "random"], "--sort"),
    ],
)
def test_bad_values_are_one_line_on_stderr(
    cli: RunCli, clean_database: str, options: list[str], fragment: str
) -> None:
    register(clean_database, "ada@example.com")
    action, *rest = options
    assert_one_line_failure(cli("tasks", action, "--user", "ada@example.com", *rest), fragment)
    assert query(clean_database, "SELECT count(*) FROM tasks") == [(0,)]
