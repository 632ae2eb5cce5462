"""How real clients produce the values the OpenAPI document names by a format it cannot describe.

The document marks three kinds of value a client cannot make up from a JSON Schema alone:

- `password` (new and current passwords): a new password must also be hard to guess (zxcvbn
  score 2 or more, the email counting as known), which no length or pattern can say. Clients
  choose passphrases: here 3 to 5 distinct words of a fixed list and a number, joined by '-'.
- `task-cursor`: a `next_cursor` the API gave out, that is the encoding of the position
  (created_at in UTC, id) of a task, with the digest of the list it came from: clients pass
  it back with the same sort and filters, so a hook re-encodes it for the query it is sent
  with (`map_query`).
- `time-zone`, `tag-name`, `due-date`, `due-time`, `search-words`: an IANA name of the tzdata
  package, a tag name (trimmed 1 to 40 characters, no control character, `/` or `,`), a date of
  1900 to 9999 (the last day left out: a time of it west of UTC falls after the year 9999), a
  wall time, and a search of 1 to 200 characters after trimming.
- `idempotency-key`: unique per logical request. Clients use a fresh UUID4 for every request;
  reusing a key with another body is rightly refused (422).

and one whose JSON Schema meaning is wider than what the server accepts for good reasons:

- `email`: schemathesis' own generator draws special-use domains (`.test`, `.local`, ...) that
  email-validator, which the server uses, refuses as undeliverable by definition. The
  addresses here are Hypothesis' (registered top-level domains), kept only when
  email-validator accepts them, with the very call the server makes.

`register()` makes schemathesis draw these formats from the strategies below. It changes a
process-wide registry of schemathesis, which only the fuzz tests use.
"""

import uuid
from datetime import UTC, date, datetime
from typing import Any

import schemathesis
from email_validator import EmailNotValidError, validate_email
from hypothesis import strategies as st

from domain.due import parse_day, timezone_names
from domain.errors import ValidationFailed
from domain.queries import TaskPosition, TaskQuery, TaskSort
from domain.tags import tag_name_problems
from domain.tasks import Priority
from domain.users import MAX_EMAIL_LENGTH
from entrypoints.http.schemas import decode_cursor, encode_cursor

# Distinct, not very common words: three of them are already far beyond a million guesses.
PASSPHRASE_WORDS = (
    "anchor",
    "basalt",
    "cobalt",
    "dervish",
    "ember",
    "fjord",
    "gazebo",
    "halcyon",
    "isotope",
    "jackal",
    "kestrel",
    "lantern",
    "marmot",
    "nebula",
    "obsidian",
    "paprika",
    "quartz",
    "rhubarb",
    "saffron",
    "tundra",
    "umber",
    "vortex",
    "walrus",
    "xylem",
    "yarrow",
    "zephyr",
)


def _passphrase(words: list[str], number: int) -> str:
    return "-".join([*words, str(number)])


PASSWORDS = st.builds(
    _passphrase,
    st.lists(st.sampled_from(PASSPHRASE_WORDS), min_size=3, max_size=5, unique=True),
    st.integers(min_value=0, max_value=9999),
)
"""Strong passphrases of 3 to 5 words, well inside the 8..128 characters the API allows."""

# Positions of tasks as the API hands them out: created_at in UTC, to the microsecond.
TASK_CURSORS = st.builds(
    lambda created_at, task_id: encode_cursor(TaskQuery(), TaskPosition(created_at, task_id)),
    st.datetimes(
        min_value=datetime(2000, 1, 1),
        max_value=datetime(2100, 1, 1),
        timezones=st.just(UTC),
    ),
    st.uuids(),
)

# A fresh key for every request, as clients make them: drawn keys would repeat across examples
# (Hypothesis likes the simplest UUID), and a key repeated with another body is a 422.
IDEMPOTENCY_KEYS = st.builds(lambda: str(uuid.uuid4()))


def email_accepted(address: str) -> bool:
    """Whether the server's email check accepts the address (the same call, nothing looser)."""
    if len(address) > MAX_EMAIL_LENGTH:
        return False
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


EMAILS = st.emails().filter(email_accepted)


TIME_ZONES = st.sampled_from(sorted(timezone_names()))
TAG_NAMES = st.text(min_size=1, max_size=40).filter(
    lambda name: not tag_name_problems(name, "t")[1]
)
DUE_DATES = st.dates(min_value=date(1900, 1, 1), max_value=date(9999, 12, 30)).map(date.isoformat)
DUE_TIMES = st.times().map(lambda moment: moment.replace(microsecond=0).isoformat())
SEARCHES = st.text(min_size=1, max_size=200).filter(
    lambda q: 1 <= len(q.strip()) <= 200 and "\x00" not in q
)


def _flag(value: Any) -> bool | None:
    return None if value not in ("true", "false") else value == "true"


def _day(value: Any) -> date | None:
    return None if value is None else parse_day(value, "due")


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [] if value is None else [value]


def list_query(query: dict[str, Any]) -> TaskQuery:
    """The list a GET /api/tasks query string asks for (ValueError, TypeError or
    ValidationFailed when it asks for none)."""
    return TaskQuery(
        completed=_flag(query.get("completed")),
        priorities=frozenset(Priority(p) for p in _listed(query.get("priority"))),
        tags=tuple(_listed(query.get("tag"))),
        search=query.get("q"),
        due_after=_day(query.get("due_after")),
        due_before=_day(query.get("due_before")),
        has_due=_flag(query.get("has_due")),
        overdue=_flag(query.get("overdue")),
        sort=TaskSort(query.get("sort", "-created_at")),
    )


def cursor_for(query: dict[str, Any]) -> dict[str, Any]:
    """The query with its cursor made for its own sort and filters, as a client's next_cursor
    is; a query that is not a valid list is left as it is (it is refused for that)."""
    if not isinstance(query.get("cursor"), str):
        return query
    try:
        position = decode_cursor(query["cursor"], TaskQuery())
        listed = list_query(query)
    except (ValueError, TypeError, ValidationFailed):
        return query
    key = {"due": None, "priority": 0, "title": "", "updated_at": position.created_at}.get(
        listed.sort.key
    )
    moved = TaskPosition(position.created_at, position.id, key)
    return {**query, "cursor": encode_cursor(listed, moved)}


def map_query(context: Any, query: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if query is None else cursor_for(query)


def register() -> None:
    schemathesis.hook(map_query)
    schemathesis.openapi.format("time-zone", TIME_ZONES)
    schemathesis.openapi.format("tag-name", TAG_NAMES)
    schemathesis.openapi.format("due-date", DUE_DATES)
    schemathesis.openapi.format("due-time", DUE_TIMES)
    schemathesis.openapi.format("search-words", SEARCHES)
    schemathesis.openapi.format("password", PASSWORDS)
    schemathesis.openapi.format("task-cursor", TASK_CURSORS)
    schemathesis.openapi.format("idempotency-key", IDEMPOTENCY_KEYS)
    schemathesis.openapi.format("email", EMAILS)
