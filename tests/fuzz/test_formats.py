"""The values the fuzz suite makes for the document's custom formats are what the API accepts.

Each strategy of tests/fuzz/formats.py is checked against the server's own rules (zxcvbn with
the email as user input, email-validator, the cursor decoder), and the registered strategies are
what schemathesis draws for the document's operations.
"""

import functools
import re
import uuid
from typing import Any

import schemathesis
from email_validator import validate_email
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.schemas import BaseSchema
from zxcvbn import zxcvbn

from adapters.email import EmailValidatorPolicy
from adapters.password_strength import MIN_SCORE
from domain.errors import ValidationFailed
from domain.queries import TaskQuery
from domain.users import MAX_EMAIL_LENGTH, MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from entrypoints.http.schemas import decode_cursor, encode_cursor
from tests.fuzz import formats
from tests.fuzz.support import DOCUMENT

STRATEGY_SETTINGS = settings(
    max_examples=50,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
DRAW_SETTINGS = settings(
    max_examples=20,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)
(CURSOR,) = [
    parameter
    for parameter in DOCUMENT["paths"]["/api/tasks"]["get"]["parameters"]
    if parameter["name"] == "cursor"
]
IDEMPOTENCY_KEY = re.compile(r"[\x20-\x7e]{1,255}")


@STRATEGY_SETTINGS
@given(password=formats.PASSWORDS, email=formats.EMAILS)
def test_passwords_are_strong_enough_for_the_server(password: str, email: str) -> None:
    assert MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH
    assert "\x00" not in password
    # The server's judgement: zxcvbn, the email counting as known to an attacker.
    result = zxcvbn(password, user_inputs=[email], max_length=MAX_PASSWORD_LENGTH)
    assert result["score"] >= MIN_SCORE, (password, email, result["score"])


def test_the_weakest_passphrase_is_strong_enough() -> None:
    """Three of the shortest words and the smallest number, the email being made of them."""
    words = sorted(formats.PASSPHRASE_WORDS, key=len)[:3]
    password = "-".join([*words, "0"])
    email = f"{'.'.join(words)}@example.com"
    assert zxcvbn(password, user_inputs=[email])["score"] >= MIN_SCORE, password


@STRATEGY_SETTINGS
@given(email=formats.EMAILS)
def test_emails_are_accepted_by_the_server(email: str) -> None:
    assert len(email) <= MAX_EMAIL_LENGTH
    validate_email(email, check_deliverability=False)
    EmailValidatorPolicy().normalize(email)


@STRATEGY_SETTINGS
@given(cursor=formats.TASK_CURSORS)
def test_cursors_are_cursors_the_api_gives_out(cursor: str) -> None:
    assert re.fullmatch(CURSOR["schema"]["pattern"], cursor)
    position = decode_cursor(cursor, TaskQuery())
    assert position.created_at.utcoffset() is not None
    assert encode_cursor(TaskQuery(), position) == cursor


@STRATEGY_SETTINGS
@given(data=st.data())
def test_idempotency_keys_are_fresh_uuid4s(data: st.DataObject) -> None:
    keys = [data.draw(formats.IDEMPOTENCY_KEYS) for _ in range(20)]
    for key in keys:
        assert IDEMPOTENCY_KEY.fullmatch(key)
        assert uuid.UUID(key).version == 4
    assert len(set(keys)) == len(keys)


@functools.cache
def _schema() -> BaseSchema:
    formats.register()
    return schemathesis.openapi.from_dict(DOCUMENT)


def _draw(method: str, path: str, check: Any) -> None:
    """Positive cases schemathesis draws for an operation of the document, each checked."""
    strategy = _schema()[path][method].as_strategy(generation_mode=GenerationMode.POSITIVE)

    @DRAW_SETTINGS
    @given(case=strategy)
    def draw(case: Any) -> None:
        check(case)

    draw()


def test_schemathesis_draws_registered_passwords_and_emails() -> None:
    def check(case: Any) -> None:
        body = case.body
        assert re.fullmatch(r"([a-z]+-){3,5}\d+", body["password"]), body
        assert all(word in formats.PASSPHRASE_WORDS for word in body["password"].split("-")[:-1])
        validate_email(body["email"], check_deliverability=False)
        result = zxcvbn(body["password"], user_inputs=[body["email"]])
        assert result["score"] >= MIN_SCORE, body

    _draw("POST", "/api/auth/register", check)


def test_schemathesis_draws_registered_cursors() -> None:
    seen: list[str] = []

    def check(case: Any) -> None:
        cursor = (case.query or {}).get("cursor")
        if cursor is None:
            return
        try:
            listed = formats.list_query(case.query)
        except (ValueError, TypeError, ValidationFailed):
            return  # a query that asks for no list: refused for that, cursor or not
        decode_cursor(cursor, listed)  # made for the very list it is sent with
        seen.append(cursor)

    _draw("GET", "/api/tasks", check)
    assert seen


def test_schemathesis_draws_registered_idempotency_keys() -> None:
    seen: list[str] = []

    def check(case: Any) -> None:
        key = (case.headers or {}).get("Idempotency-Key")
        if key is not None:
            assert uuid.UUID(key).version == 4
            seen.append(key)

    _draw("POST", "/api/tasks", check)
    assert seen
    assert len(set(seen)) == len(seen)
