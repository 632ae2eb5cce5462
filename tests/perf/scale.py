"""Flat cost as data grows, on todo-api only: accounts are created through its API (real
password hashes, real logins), their tasks are inserted straight into its database with COPY."""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from urllib.parse import quote
from uuid import uuid4

import httpx
import psycopg

from tests.perf.load import Load, LoadGenerator, LoadResult
from tests.perf.scenarios import (
    Account,
    Options,
    email_of,
    expect,
    list_request,
    log_in,
    measure,
    progress,
    register,
)
from tests.perf.servers import RunningServer

SMALL_USER_TASKS = 100
LARGE_USER_TASKS = 100_000
TINY_USER_TASKS = 10
OTHER_USERS = 10
OTHER_USER_TASKS = 100_000
DEEP_OFFSET = 50_000
CURSOR_WALK_PAGE = 1000
COPY_BATCH_ROWS = 5000

# Every column of the tasks table (migrations/0001): titles non-blank, descriptions short.
_COPY_TASKS = """COPY tasks (id, user_id, title, description, completed, created_at, updated_at)
                 FROM STDIN"""


@dataclass(frozen=True, slots=True)
class ScaleReport:
    first_page_100: LoadResult
    first_page_100k: LoadResult
    offset_page_100k: LoadResult
    cursor_page_100k: LoadResult | None
    """None when the API has no keyset pagination (no `cursor` parameter in its OpenAPI)."""
    tiny_user_alone: LoadResult
    tiny_user_among_others: LoadResult


def measure_scale(
    generator: LoadGenerator, server: RunningServer, database_url: str, options: Options
) -> ScaleReport:
    with httpx.Client(base_url=server.url, timeout=60) as client:
        progress("scale: registering users through the API")
        small, large, tiny = (
            _new_account(client, email_of(f"scale-{size}"))
            for size in (SMALL_USER_TASKS, LARGE_USER_TASKS, TINY_USER_TASKS)
        )
        others = [register(client, email_of(f"scale-other-{n}")) for n in range(OTHER_USERS)]
        sizes = {small: SMALL_USER_TASKS, large: LARGE_USER_TASKS, tiny: TINY_USER_TASKS}
        progress("scale: inserting tasks with COPY")
        insert_tasks(database_url, {account.user_id: size for account, size in sizes.items()})
        for account, size in sizes.items():
            _check_total(client, account, size)

        def list_page(account: Account, query: str = "limit=20") -> LoadResult:
            [result] = measure(
                generator,
                server,
                [Load([list_request(account, query)], options.connections)],
                options,
            )
            return result

        progress("scale: first pages at 100 and 100 000 tasks, a deep offset page")
        first_page_100 = list_page(small)
        first_page_100k = list_page(large)
        offset_page_100k = list_page(large, f"limit=20&offset={DEEP_OFFSET}")
        cursor = _middle_cursor(client, large) if _has_cursor_pagination(client) else None
        cursor_page_100k = None if cursor is None else list_page(large, f"limit=20&cursor={cursor}")
        tiny_user_alone = list_page(tiny)

        progress(f"scale: inserting {OTHER_USERS} x {OTHER_USER_TASKS} tasks of other users")
        insert_tasks(database_url, dict.fromkeys(others, OTHER_USER_TASKS))
        tiny_user_among_others = list_page(tiny)
    return ScaleReport(
        first_page_100=first_page_100,
        first_page_100k=first_page_100k,
        offset_page_100k=offset_page_100k,
        cursor_page_100k=cursor_page_100k,
        tiny_user_alone=tiny_user_alone,
        tiny_user_among_others=tiny_user_among_others,
    )


def insert_tasks(database_url: str, tasks_per_user: Mapping[str, int]) -> None:
    """COPY fires row triggers, so counts kept by database triggers stay right. One transaction
    per batch: a per-row trigger that updates one counter row per user makes a single huge
    transaction quadratic (each update walks the row versions the transaction left behind).
    The planner then gets fresh statistics, as autovacuum would give it soon after such a load."""
    rows = _task_rows(tasks_per_user)
    with psycopg.connect(database_url, autocommit=True) as connection:
        while batch := list(islice(rows, COPY_BATCH_ROWS)):
            with (
                connection.transaction(),
                connection.cursor() as cursor,
                cursor.copy(_COPY_TASKS) as copy,
            ):
                for row in batch:
                    copy.write_row(row)
        connection.execute("ANALYZE tasks")


def _task_rows(tasks_per_user: Mapping[str, int]) -> Iterator[tuple[object, ...]]:
    newest = datetime.now(UTC) - timedelta(hours=1)
    for user_id, count in tasks_per_user.items():
        for n in range(count):
            created = newest - timedelta(seconds=n)
            yield (uuid4(), user_id, f"Task {n}", "inserted by COPY", n % 3 == 0, created, created)


def _new_account(client: httpx.Client, email: str) -> Account:
    register(client, email)
    return log_in(client, email)


def _check_total(client: httpx.Client, account: Account, expected: int) -> None:
    answer = expect(client.get("/api/tasks?limit=1", headers=account.headers()), 200).json()
    if answer["total"] != expected:
        raise RuntimeError(
            f"{account.email}: total is {answer['total']} after inserting {expected} tasks "
            "(is the count kept by code that COPY bypasses?)"
        )


def _has_cursor_pagination(client: httpx.Client) -> bool:
    document = expect(client.get("/schema/openapi.json"), 200).json()
    listing = document.get("paths", {}).get("/api/tasks", {}).get("get", {})
    return any(parameter.get("name") == "cursor" for parameter in listing.get("parameters", []))


def _middle_cursor(client: httpx.Client, account: Account) -> str | None:
    """The next_cursor after DEEP_OFFSET tasks, walking there page by page."""
    cursor: str | None = None
    for _ in range(DEEP_OFFSET // CURSOR_WALK_PAGE):
        query = f"limit={CURSOR_WALK_PAGE}" + ("" if cursor is None else f"&cursor={cursor}")
        answer = expect(client.get(f"/api/tasks?{query}", headers=account.headers()), 200).json()
        if not answer.get("next_cursor"):
            progress("scale: the task list has a cursor parameter but gave no next_cursor")
            return None
        cursor = quote(answer["next_cursor"], safe="")
    return cursor
