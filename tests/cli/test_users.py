"""`todo-api users create EMAIL` (password on stdin) and `todo-api users delete EMAIL`."""

from tests.cli.support import (
    PASSWORD,
    RunCli,
    assert_ok,
    assert_one_line_failure,
    can_log_in,
    query,
    register,
)


def emails(database_url: str) -> list[str]:
    return [email for (email,) in query(database_url, "SELECT email FROM users ORDER BY email")]


def test_create_reads_the_password_from_stdin_and_stores_the_email_lowercased(
    cli: RunCli, clean_database: str
) -> None:
    result = assert_ok(cli("users", "create", "Ada.Lovelace@Example.COM", stdin=PASSWORD + "\n"))

    assert "ada.lovelace@example.com" in result.stdout
    assert "Password" not in result.stdout + result.stderr  # stdin is not a terminal: no prompt
    assert emails(clean_database) == ["ada.lovelace@example.com"]
    assert can_log_in(clean_database, "ada.lovelace@example.com", PASSWORD)
    # The line break that ends the input is not part of the password.
    assert not can_log_in(clean_database, "ada.lovelace@example.com", PASSWORD + "\n")


def test_only_the_final_line_break_is_dropped_from_the_password(
    cli: RunCli, clean_database: str
) -> None:
    password = "  spaced out pass  "

    assert_ok(cli("users", "create", "grace@example.com", stdin=password + "\r\n"))

    assert can_log_in(clean_database, "grace@example.com", password)
    assert not can_log_in(clean_database, "grace@example.com", password.strip())


def test_create_refuses_an_email_already_registered_in_another_case(
    cli: RunCli, clean_database: str
) -> None:
    register(clean_database, "ada@example.com")

    result = cli("users", "create", "ADA@example.com", stdin="another password 1\n")

    assert_one_line_failure(result, "Email already registered")
    assert emails(clean_database) == ["ada@example.com"]
    assert can_log_in(clean_database, "ada@example.com", PASSWORD)


def test_create_refuses_a_password_of_7_characters(cli: RunCli, clean_database: str) -> None:
    result = cli("users", "create", "ada@example.com", stdin="1234567\n")

    line = assert_one_line_failure(result, "password")
    assert "8" in line  # names the rule: 8 to 128 characters
    assert emails(clean_database) == []


def test_create_refuses_an_invalid_email(cli: RunCli, clean_database: str) -> None:
    result = cli("users", "create", "not-an-email", stdin=PASSWORD + "\n")

    assert_one_line_failure(result, "email")
    assert emails(clean_database) == []


def test_delete_removes_the_user_and_their_tasks_only(cli: RunCli, clean_database: str) -> None:
    ada = register(clean_database, "ada@example.com")
    grace = register(clean_database, "grace@example.com")
    for user_id, title in [(ada, "ada 1"), (ada, "ada 2"), (grace, "grace 1")]:
        query(
            clean_database,
            "INSERT INTO tasks (id, title, user_id) VALUES (gen_random_uuid(), %s, %s)",
            (title, user_id),
        )

    result = assert_ok(cli("users", "delete", "Ada@Example.com"))

    assert "ada@example.com" in result.stdout
    assert emails(clean_database) == ["grace@example.com"]
    assert query(clean_database, "SELECT title FROM tasks") == [("grace 1",)]


def test_delete_of_an_unknown_email_fails(cli: RunCli, clean_database: str) -> None:
    register(clean_database, "ada@example.com")

    result = cli("users", "delete", "nobody@example.com")

    assert_one_line_failure(result)
    assert result.stdout == ""
    assert emails(clean_database) == ["ada@example.com"]


def test_delete_removes_an_account_that_signs_in_through_better_auth(
    cli: RunCli, clean_database: str
) -> None:
    # As the first Better Auth token of a person leaves it: no password, a linked identity.
    query(
        clean_database,
        """WITH account AS (
               INSERT INTO users (id, email, password_hash)
               VALUES (gen_random_uuid(), 'ada@example.com', NULL) RETURNING id
           )
           INSERT INTO linked_identities (issuer, subject, user_id)
           SELECT 'https://auth.example.com', 'HClj71TbcO6UM1fVN8h7pnaQeXgJ863p', id
           FROM account""",
    )

    result = assert_ok(cli("users", "delete", "ada@example.com"))

    assert "ada@example.com" in result.stdout
    assert emails(clean_database) == []
    assert query(clean_database, "SELECT count(*) FROM linked_identities") == [(0,)]
