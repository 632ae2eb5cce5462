"""The `todo-api` command line: serve the HTTP API, run migrations, and administer accounts
and tasks through the same use cases as HTTP."""

import argparse
import asyncio
import getpass
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import date
from typing import NoReturn

import psycopg

from adapters.postgres.migrations import Migrator
from adapters.postgres.pool import pooler_in
from application.errors import (
    ApplicationError,
    StatementTimedOut,
    StorageUnavailable,
    TransactionConflict,
)
from domain.due import Due, WrittenDue, parse_day
from domain.errors import DomainError, ValidationFailed
from domain.queries import MAX_PAGE_SIZE, TaskPosition, TaskQuery, TaskSort
from domain.tasks import Priority, Task
from entrypoints.bootstrap import Services, database_url, open_services, timeouts
from entrypoints.logs import configure_logging
from entrypoints.problems import PROBLEMS
from entrypoints.settings import ConfigurationError, Settings, load_settings


class CommandFailed(Exception):
    """A failure the user can act on; its message is the one line printed."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, no usage dump: the contract wants a single-line message for bad arguments.
        self.exit(2, f"todo-api: error: {message} (see `{self.prog} --help`)\n")


PRIORITIES = [priority.value for priority in Priority]


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="todo-api", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="apply pending migrations, then serve HTTP")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=_port, default=8000)
    serve.add_argument("--workers", type=_positive, default=1, help="server processes")

    commands.add_parser("migrate", help="apply pending migrations")
    rollback = commands.add_parser("rollback", help="roll back the newest migrations")
    rollback.add_argument("--steps", type=_positive, default=1)
    commands.add_parser("migrations", help="list migrations and whether each is applied")

    users = commands.add_parser("users", help="account administration").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    create = users.add_parser("create", help="create an account (password from stdin/prompt)")
    create.add_argument("email")
    users.add_parser("delete", help="delete an account and all its tasks").add_argument("email")

    tasks = commands.add_parser("tasks", help="task administration").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    listing = tasks.add_parser(
        "list", help="list a user's tasks (newest first, or --sort), with the API's filters"
    )
    listing.add_argument("--user", required=True, metavar="EMAIL")
    listing.add_argument("--completed", choices=["true", "false"])
    listing.add_argument(
        "--priority", action="append", choices=PRIORITIES, help="any of these (repeatable)"
    )
    listing.add_argument("--tag", action="append", help="every one of these tags (repeatable)")
    listing.add_argument("--q", help="every word a substring of the title or description")
    listing.add_argument("--due-after", metavar="YYYY-MM-DD")
    listing.add_argument("--due-before", metavar="YYYY-MM-DD")
    listing.add_argument("--has-due", choices=["true", "false"])
    listing.add_argument("--overdue", choices=["true", "false"])
    listing.add_argument("--sort", choices=[sort.value for sort in TaskSort], default="-created_at")
    add = tasks.add_parser("add", help="add a task to a user's list")
    add.add_argument("--user", required=True, metavar="EMAIL")
    add.add_argument("title")
    add.add_argument("--description")
    add.add_argument("--priority", choices=PRIORITIES, default="none")
    add.add_argument("--due", metavar="YYYY-MM-DD", help="the day it is due (all day)")
    add.add_argument("--due-time", metavar="HH:MM", help="the time of that day it is due")
    add.add_argument(
        "--due-timezone", metavar="ZONE", help="an IANA name (default: the user's time zone)"
    )
    add.add_argument("--tag", action="append", default=[], help="a tag (repeatable)")
    return parser


def _positive(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {raw!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def _port(raw: str) -> int:
    value = _positive(raw)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"not a port number: {value}")
    return value


def main(argv: Sequence[str] | None = None) -> NoReturn:
    arguments = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if arguments.command == "serve" else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if arguments.command != "serve":
        # The pool retries in the background and logs each try; a command prints one line.
        logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
    try:
        _run(arguments)
    except KeyboardInterrupt:
        sys.exit(130)
    except CommandFailed as failure:
        _fail(str(failure))
    except ConfigurationError as error:
        _fail(f"configuration: {error}")
    except (StatementTimedOut, TransactionConflict) as error:  # reached, but it gave up
        _fail(f"{_message_of(error)} ({_first_line(error.__cause__ or error)})")
    except StorageUnavailable as error:
        _fail(f"cannot reach the database: {_first_line(error.__cause__ or error)}")
    except psycopg.errors.UndefinedTable:
        _fail("the database has no todo-api tables yet: run `todo-api migrate`")
    except ValidationFailed as error:
        _fail("; ".join(f"{e.field}: {e.message}" for e in error.errors))
    except (DomainError, ApplicationError) as error:
        _fail(_message_of(error))
    except Exception as error:  # the contract: never a traceback
        _fail(f"unexpected error: {type(error).__name__}: {_first_line(error)}")
    sys.exit(0)


def _run(arguments: argparse.Namespace) -> None:
    settings = load_settings()
    if arguments.command == "serve":
        configure_logging(settings.log_level, settings.log_format)
    command = arguments.command
    with database_url(settings) as url:
        settings = replace(settings, database_url=url)
        migrator = Migrator(
            settings.database_url_unpooled or url,
            timeouts=timeouts(settings),
            store_as_role_defaults=settings.database_url_unpooled is not None,
        )
        if command == "serve":
            _serve(settings, migrator, arguments.host, arguments.port, arguments.workers)
        elif command == "migrate":
            applied = migrator.apply()
            print("\n".join(f"applied {m}" for m in applied) or "nothing to apply")
        elif command == "rollback":
            rolled_back = migrator.rollback(arguments.steps)
            print("\n".join(f"rolled back {m}" for m in rolled_back) or "nothing to roll back")
        elif command == "migrations":
            for migration in migrator.status():
                print(f"{'applied' if migration.applied else 'pending'}\t{migration.id}")
        elif command == "users":
            _with_services(settings, _USER_ACTIONS[arguments.action], arguments)
        else:
            _with_services(settings, _TASK_ACTIONS[arguments.action], arguments)


def _serve(settings: Settings, migrator: Migrator, host: str, port: int, workers: int) -> None:
    import uvicorn

    from entrypoints.http.app import create_server_app

    for applied in migrator.apply():
        logging.getLogger("todo_api").info("applied migration %s", applied)
    _warn_of_prepared_statements_behind_a_pooler(settings)
    # uvicorn drains in-flight requests on SIGINT/SIGTERM, then re-raises the signal; a quiet
    # handler lets the process go on to close the database and exit 0 instead of dying by it.
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, lambda *_: None)
    options = {
        "host": host,
        "port": port,
        "timeout_graceful_shutdown": settings.shutdown_grace_seconds,
        "log_config": None,  # ours, set by configure_logging: JSON lines or console
        "access_log": False,  # the app logs each request itself, with its id and user
    }
    if workers == 1:
        uvicorn.run(create_server_app(settings), **options)  # type: ignore[arg-type]
        return
    # Worker processes build their own app from the environment: hand them the database this
    # process resolved (maybe the embedded one) and the secret it loaded (maybe generated).
    os.environ["DATABASE_URL"] = settings.database_url or ""
    os.environ["BETTER_AUTH_SECRET"] = settings.auth_secret
    uvicorn.run(
        "entrypoints.http.app:create_app_from_environment",
        factory=True,
        workers=workers,
        **options,  # type: ignore[arg-type]
    )


def _warn_of_prepared_statements_behind_a_pooler(settings: Settings) -> None:
    # After the migrations, so that a start that fails still prints its one line.
    pooler = pooler_in(settings.database_url or "")
    if pooler is not None and settings.prepare_threshold is not None:
        logging.getLogger("todo_api").warning(
            "DATABASE_URL looks like a connection pooler (%s) and DATABASE_PREPARE_THRESHOLD is "
            "%s: in transaction mode, unless the pooler tracks prepared statements (PgBouncer "
            "1.21+ with max_prepared_statements), requests can fail once statements are "
            "prepared; set DATABASE_PREPARE_THRESHOLD=off",
            pooler,
            settings.prepare_threshold,
        )


def _with_services(
    settings: Settings,
    action: Callable[[Services, argparse.Namespace], Awaitable[None]],
    arguments: argparse.Namespace,
) -> None:
    async def run() -> None:
        # A command needs one connection, not a server's pool.
        small = replace(settings, pool_min_size=1, pool_max_size=2)
        async with open_services(small, small.database_url or "", wait_for_database=True) as s:
            await action(s, arguments)

    asyncio.run(run())


async def _create_user(services: Services, arguments: argparse.Namespace) -> None:
    user = await services.accounts.register(arguments.email, _read_password())
    print(f"created user {user.id} {user.email}")


async def _delete_user(services: Services, arguments: argparse.Namespace) -> None:
    user = await services.accounts.find_by_email(arguments.email)
    await services.accounts.delete(user.id)
    print(f"deleted user {user.email} and all their tasks")


async def _list_tasks(services: Services, arguments: argparse.Namespace) -> None:
    user = await services.accounts.find_by_email(arguments.user)
    query = TaskQuery(
        completed=_flag(arguments.completed),
        priorities=frozenset(Priority(p) for p in arguments.priority or ()),
        tags=tuple(arguments.tag or ()),
        search=arguments.q,
        due_after=None
        if arguments.due_after is None
        else parse_day(arguments.due_after, "--due-after"),
        due_before=None
        if arguments.due_before is None
        else parse_day(arguments.due_before, "--due-before"),
        has_due=_flag(arguments.has_due),
        overdue=_flag(arguments.overdue),
        sort=TaskSort(arguments.sort),
        limit=MAX_PAGE_SIZE,
    )
    caller = services.accounts.acting_for(user)
    after: TaskPosition | None = None
    while True:  # page after page, each after the last task of the one before
        page = await services.tasks.list(caller, replace(query, after=after))
        for task in page.tasks:
            print(_task_line(task))
        after = page.next_position(query.sort)
        if after is None:
            return


def _task_line(task: Task) -> str:
    mark = "x" if task.completed else " "
    due = "-" if task.due is None else _due_text(task.due)
    tags = ",".join(task.tags) or "-"
    fields = (task.created_at.isoformat(), task.priority.value, due, tags, task.title)
    return "\t".join((str(task.id), f"[{mark}]", *fields))


def _due_text(due: Due) -> str:
    when = due.date.isoformat() if due.time is None else f"{due.date}T{due.time.isoformat()}"
    return f"{when} {due.timezone}"


def _day(value: str | None, option: str) -> date | None:
    return None if value is None else parse_day(value, option)


def _flag(value: str | None) -> bool | None:
    return None if value is None else value == "true"


async def _add_task(services: Services, arguments: argparse.Namespace) -> None:
    user = await services.accounts.find_by_email(arguments.user)
    if arguments.due is None and (arguments.due_time or arguments.due_timezone):
        raise ValidationFailed.single("--due", "Give the day with --due-time or --due-timezone")
    task = await services.tasks.create(
        services.accounts.acting_for(user),
        title=arguments.title,
        description=arguments.description,
        priority=Priority(arguments.priority),
        due=None
        if arguments.due is None
        else WrittenDue(arguments.due, arguments.due_time, arguments.due_timezone),
        tags=arguments.tag,
    )
    print(f"added task {task.id} {task.title}")


_USER_ACTIONS = {"create": _create_user, "delete": _delete_user}
_TASK_ACTIONS = {"list": _list_tasks, "add": _add_task}


def _read_password() -> str:
    if sys.stdin.isatty():
        return getpass.getpass("Password: ")
    password = sys.stdin.read()
    # Only the line break that ends the input is not part of the password.
    return password.removesuffix("\n").removesuffix("\r")


def _message_of(error: Exception) -> str:
    for error_type in type(error).__mro__:
        if error_type in PROBLEMS:
            return PROBLEMS[error_type][1]
    return type(error).__name__


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _fail(message: str) -> NoReturn:
    print(f"todo-api: error: {message}", file=sys.stderr)
    sys.exit(1)
