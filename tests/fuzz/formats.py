"""How real clients produce the values the OpenAPI document names by a format it cannot describe.

The document marks three kinds of value a client cannot make up from a JSON Schema alone:

- `password` (new and current passwords): a new password must also be hard to guess (zxcvbn
  score 2 or more, the email counting as known), which no length or pattern can say. Clients
  choose passphrases: here 3 to 5 distinct words of a fixed list and a number, joined by '-'.
- `task-cursor`: a `next_cursor` the API gave out, that is the encoding of the position
  (created_at in UTC, id) of a task.
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
from datetime import UTC, datetime

import schemathesis
from email_validator import EmailNotValidError, validate_email
from hypothesis import strategies as st

from domain.queries import TaskPosition
from domain.users import MAX_EMAIL_LENGTH
from entrypoints.http.schemas import encode_cursor

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
    lambda created_at, task_id: encode_cursor(TaskPosition(created_at, task_id)),
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


def register() -> None:
    schemathesis.openapi.format("password", PASSWORDS)
    schemathesis.openapi.format("task-cursor", TASK_CURSORS)
    schemathesis.openapi.format("idempotency-key", IDEMPOTENCY_KEYS)
    schemathesis.openapi.format("email", EMAILS)
