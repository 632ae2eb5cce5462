"""Flat cost of an organised list as one user's tasks grow (issue 20), on todo-api only: the
first page (with its total) of each sort and filter that a list is most often read by, for a
user with 100 tasks and for one with 100 000 of the same mix, inserted straight into the
database with COPY."""

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from itertools import islice
from urllib.parse import quote
from uuid import uuid4

import httpx
import psycopg

from domain.due import Due
from domain.queries import title_key
from tests.perf.load import Load, LoadGenerator, LoadResult
from tests.perf.scale import COPY_BATCH_ROWS
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

SMALL, LARGE = 100, 100_000
SEARCH_WORD = "quokka"  # in 1% of the descriptions
RARE_TAG = "rare"  # on 1% of the tasks
TAGS = ("work", "home", "errand")
ZONES = ("Europe/Lisbon", "America/New_York", "Asia/Tokyo", "UTC")
QUERIES = {
    "default list": "limit=20",
    "sort=due": "limit=20&sort=due",
    "sort=-priority": "limit=20&sort=-priority",
    f"tag={RARE_TAG}": f"limit=20&tag={RARE_TAG}",
    f"q={SEARCH_WORD}": f"limit=20&q={SEARCH_WORD}",
    "overdue=true": "limit=20&overdue=true",
}
CURSOR_DEPTH = LARGE // 2

_COPY = """COPY tasks (id, user_id, title, description, completed, created_at, updated_at,
                       priority, due_date, due_time, due_timezone, due_moment, completed_at,
                       tag_keys, title_key)
           FROM STDIN"""


@dataclass(frozen=True, slots=True)
class OrganisedReport:
    small: dict[str, LoadResult]
    large: dict[str, LoadResult]
    cursor_under_due: LoadResult
    """A page from the middle of the 100 000 under sort=due, through its cursor."""


def measure_organised(
    generator: LoadGenerator, server: RunningServer, database_url: str, options: Options
) -> OrganisedReport:
    with httpx.Client(base_url=server.url, timeout=60) as client:
        progress("organised: registering two users through the API")
        accounts = {}
        for size in (SMALL, LARGE):
            email = email_of(f"organised-{size}")
            register(client, email)
            accounts[size] = log_in(client, email)
        progress("organised: inserting the mix of tasks with COPY")
        for size, account in accounts.items():
            insert_mix(database_url, account.user_id, size)

        def page(account: Account, query: str) -> LoadResult:
            [result] = measure(
                generator,
                server,
                [Load([list_request(account, query)], options.connections)],
                options,
            )
            return result

        small, large = {}, {}
        for title, query in QUERIES.items():
            progress(f"organised: {title} at {SMALL} and {LARGE} tasks")
            small[title] = page(accounts[SMALL], query)
            large[title] = page(accounts[LARGE], query)
        cursor = _cursor_at(client, accounts[LARGE], CURSOR_DEPTH)
        cursor_under_due = page(accounts[LARGE], f"limit=20&sort=due&cursor={cursor}")
    return OrganisedReport(small=small, large=large, cursor_under_due=cursor_under_due)


def insert_mix(database_url: str, user_id: str, count: int) -> None:
    """A realistic mix: every priority, about half with a due (a few of them past, some at a
    time of day, in several zones), a few tags, 1% with the search word and 1% with the rare
    tag; the user's vocabulary of tags beside them."""
    rows = _mix(user_id, count, random.Random(count))
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(
            "INSERT INTO tags (user_id, key, name) "
            "SELECT %s, name, name FROM unnest(%s::text[]) AS name",
            (user_id, [*TAGS, RARE_TAG]),
        )
        while batch := list(islice(rows, COPY_BATCH_ROWS)):
            with (
                connection.transaction(),
                connection.cursor() as cursor,
                cursor.copy(_COPY) as copy,
            ):
                for row in batch:
                    copy.write_row(row)
        connection.execute("ANALYZE tasks")


def _mix(user_id: str, count: int, rng: random.Random) -> Iterator[tuple[object, ...]]:
    now = datetime.now(UTC)
    for n in range(count):
        created = now - timedelta(hours=1, seconds=n)
        completed = n % 3 == 0
        due = None
        if rng.random() < 0.5:
            # Mostly ahead, as on a kept list: 5% of the dues have passed.
            days = rng.randint(-30, -1) if rng.random() < 0.05 else rng.randint(0, 120)
            at = None if rng.random() < 0.6 else time(rng.randint(7, 20), rng.choice((0, 30)))
            due = Due((now + timedelta(days=days)).date(), at, rng.choice(ZONES))
        tags = [tag for tag in TAGS if rng.random() < 0.3]
        if n % 100 == 7:
            tags.append(RARE_TAG)
        title = f"Task {n}"
        description = f"seen a {SEARCH_WORD} today" if n % 100 == 42 else "inserted by COPY"
        yield (
            uuid4(),
            user_id,
            title,
            description,
            completed,
            created,
            created,
            rng.randint(0, 3),
            None if due is None else due.date,
            None if due is None else due.time,
            None if due is None else due.timezone,
            None if due is None else due.moment,
            created if completed else None,
            tags,
            title_key(title),
        )


def _cursor_at(client: httpx.Client, account: Account, depth: int) -> str:
    """The next_cursor of the page that ends `depth` tasks into the list under sort=due."""
    cursor = ""
    for _ in range(depth // 1000):
        query = "limit=1000&sort=due" + (f"&cursor={cursor}" if cursor else "")
        answer = expect(client.get(f"/api/tasks?{query}", headers=account.headers()), 200).json()
        cursor = quote(answer["next_cursor"], safe="")
    return cursor
