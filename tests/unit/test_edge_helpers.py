"""Helpers of the HTTP edge: paging cursors and entity tags."""

import base64
import json
import re
from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.errors import ValidationFailed
from domain.queries import TaskPosition, TaskQuery, TaskSort
from domain.tasks import Task
from entrypoints.http.etags import etag_of, matches_none, versions_in
from entrypoints.http.schemas import decode_cursor, encode_cursor

START = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
TASK_ID = UUID("0b3f6c1e-5d2a-4f7b-9c8d-1e2f3a4b5c6d")
OWNER = UUID("aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa")


def b64(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# --- cursors ----------------------------------------------------------------------------------

fixed_offsets = st.builds(
    lambda minutes: timezone(timedelta(minutes=minutes)),
    st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1),
)
aware_datetimes = st.datetimes(timezones=st.just(UTC) | fixed_offsets | st.timezones())


QUERY = TaskQuery()


def raw(parts: list[object]) -> str:
    return b64(json.dumps(parts))


@given(created_at=aware_datetimes, task_id=st.uuids())
@settings(max_examples=300)
def test_a_cursor_decodes_to_the_position_it_encodes(created_at: datetime, task_id: UUID) -> None:
    cursor = encode_cursor(QUERY, TaskPosition(created_at, task_id))
    assert re.fullmatch(r"[A-Za-z0-9_-]+", cursor)  # URL-safe as it is, no padding
    decoded = decode_cursor(cursor, QUERY)
    assert decoded.id == task_id
    # The same instant, as the same wall time at the same UTC offset.
    assert decoded.created_at - created_at == timedelta(0)
    assert decoded.created_at.utcoffset() == created_at.utcoffset()
    assert decoded.created_at.replace(tzinfo=None) == created_at.replace(tzinfo=None)


# Keys are instants in UTC (due moments, updated_at), priority ranks or title keys.
utc_datetimes = st.datetimes(timezones=st.just(UTC))
KEYS = {
    TaskSort.NEWEST: st.none(),
    TaskSort.OLDEST: st.none(),
    TaskSort.UPDATED: utc_datetimes,
    TaskSort.RECENTLY_UPDATED: utc_datetimes,
    TaskSort.DUE: st.none() | utc_datetimes,
    TaskSort.DUE_LAST: st.none() | utc_datetimes,
    TaskSort.PRIORITY: st.integers(0, 3),
    TaskSort.PRIORITY_FIRST: st.integers(0, 3),
    TaskSort.TITLE: st.text(),
    TaskSort.TITLE_DESCENDING: st.text(),
}


@given(data=st.data(), sort=st.sampled_from(TaskSort))
@settings(max_examples=300)
def test_a_cursor_keeps_the_sort_key_of_every_sort(data: st.DataObject, sort: TaskSort) -> None:
    query = TaskQuery(sort=sort)
    position = TaskPosition(START, TASK_ID, data.draw(KEYS[sort]))
    assert decode_cursor(encode_cursor(query, position), query) == position


@pytest.mark.parametrize(
    "other",
    [
        TaskQuery(sort=TaskSort.OLDEST),
        TaskQuery(completed=True),
        TaskQuery(search="milk"),
        TaskQuery(tags=("work",)),
        TaskQuery(overdue=False),
    ],
    ids=["sort", "completed", "q", "tag", "overdue"],
)
def test_a_cursor_is_refused_by_a_list_of_another_sort_or_other_filters(other: TaskQuery) -> None:
    cursor = encode_cursor(QUERY, TaskPosition(START, TASK_ID))
    with pytest.raises(ValidationFailed) as caught:
        decode_cursor(cursor, other)
    assert [(e.field, e.message) for e in caught.value.errors] == [
        ("cursor", "Belongs to a list of another sort or other filters")
    ]


def test_the_page_does_not_change_what_a_cursor_belongs_to() -> None:
    cursor = encode_cursor(QUERY, TaskPosition(START, TASK_ID))
    assert decode_cursor(cursor, TaskQuery(limit=5, offset=3)) == TaskPosition(START, TASK_ID)


def test_a_utc_cursor_round_trips_to_an_equal_position() -> None:
    position = TaskPosition(START + timedelta(microseconds=123), TASK_ID)
    assert decode_cursor(encode_cursor(QUERY, position), QUERY) == position


def test_positions_apart_by_a_microsecond_have_different_cursors() -> None:
    one = TaskPosition(START, TASK_ID)
    other = TaskPosition(START + timedelta(microseconds=1), TASK_ID)
    assert encode_cursor(QUERY, one) != encode_cursor(QUERY, other)


DIGEST = QUERY.digest()
AT = "2025-06-01T12:00:00+00:00"
NOT_CURSORS = {
    "empty": "",
    "garbage": "not a cursor!",
    "non-ascii": "curs\u00f6r",
    "one base64 char": "A",
    "bad base64 length": "QUJDRA=A",
    "not utf-8": b64(b"\xff\xfe\xfd"),
    "not json": b64(f"{AT}|{TASK_ID}"),
    "naive timestamp": raw([DIGEST, "2025-06-01T12:00:00", str(TASK_ID), None]),
    "no id": raw([DIGEST, AT, None]),
    "empty id": raw([DIGEST, AT, "", None]),
    "bad timestamp": raw([DIGEST, "yesterday", str(TASK_ID), None]),
    "bad id": raw([DIGEST, AT, "not-a-uuid", None]),
    "extra part": raw([DIGEST, AT, str(TASK_ID), None, "more"]),
    "parts swapped": raw([DIGEST, str(TASK_ID), AT, None]),
    "a key the sort has none of": raw([DIGEST, AT, str(TASK_ID), 3]),
    "an object": b64(json.dumps({"at": AT})),
}


@pytest.mark.parametrize("cursor", list(NOT_CURSORS.values()), ids=list(NOT_CURSORS))
def test_what_is_not_a_cursor_fails_validation_on_cursor(cursor: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        decode_cursor(cursor, QUERY)
    assert [e.field for e in caught.value.errors] == ["cursor"]
    # No decoding traceback chained to it, into the logs.
    assert caught.value.__context__ is None or caught.value.__suppress_context__


@given(
    cursor=st.text()
    | st.text().map(b64)
    | st.lists(st.text() | st.integers() | st.none(), max_size=5).map(raw),
    sort=st.sampled_from(TaskSort),
)
@settings(max_examples=300)
def test_any_string_is_a_cursor_or_a_validation_failure(cursor: str, sort: TaskSort) -> None:
    try:
        position = decode_cursor(cursor, TaskQuery(sort=sort))
    except ValidationFailed as failure:
        assert [e.field for e in failure.errors] == ["cursor"]
    else:
        assert position.created_at.utcoffset() is not None


# --- entity tags ------------------------------------------------------------------------------


def task_at(updated_at: datetime) -> Task:
    return Task(TASK_ID, OWNER, "t", None, False, START, updated_at)


def test_an_etag_is_strong_and_stable() -> None:
    task = task_at(START)
    tag = etag_of(task)
    assert re.fullmatch(r'"[0-9]+"', tag)
    assert etag_of(task) == tag
    assert etag_of(task_at(START)) == tag


def test_an_etag_follows_updated_at_only() -> None:
    task = task_at(START)
    assert etag_of(task_at(START + timedelta(microseconds=1))) != etag_of(task)
    assert etag_of(task_at(START - timedelta(microseconds=1))) != etag_of(task)
    # The same instant in another zone is the same version.
    elsewhere = START.astimezone(timezone(timedelta(hours=-7)))
    assert etag_of(task_at(elsewhere)) == etag_of(task)


@given(
    updated_at=st.datetimes(
        min_value=datetime(1970, 1, 1), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
    )
)
def test_an_etag_names_the_version_it_was_made_of(updated_at: datetime) -> None:
    assert versions_in(etag_of(task_at(updated_at))) == [updated_at]


@pytest.mark.parametrize("header", ["*", " * ", "*\t"])
def test_a_star_accepts_any_version(header: str) -> None:
    assert versions_in(header) is None


def test_a_list_of_tags_gives_their_versions() -> None:
    first, second = START, START + timedelta(microseconds=1)
    header = f"{etag_of(task_at(first))} ,{etag_of(task_at(second))}"
    assert versions_in(header) == [first, second]


@pytest.mark.parametrize(
    "header",
    [
        'W/"1748779200000000"',  # weak: never matches a strong comparison
        "1748779200000000",  # unquoted
        '""',
        '"',
        '1748779200000000"',  # no opening quote
        '"1748779200000000',  # no closing quote
        '"abc"',
        '"17487792.5"',
        '"-1"',
        '"+1748779200000000"',
        '"1 2"',
        '"9999999999999999999"',  # 19 digits: no version this API gives out
        '"999999999999999999"',  # 18 digits, but beyond the year 9999
        "",
        ",,",
    ],
)
def test_weak_and_foreign_tags_give_no_version(header: str) -> None:
    assert versions_in(header) == []


def test_only_the_strong_tags_of_a_mixed_list_count() -> None:
    strong = etag_of(task_at(START))
    assert versions_in(f'W/{strong}, "foreign", {strong}') == [START]


@pytest.mark.parametrize(
    "header",
    [
        '"\u00b2"',  # SUPERSCRIPT TWO: a latin-1 byte (0xB2) any client can send
        '"1\u00b9"',
        '"\u0661\u0662"',  # ARABIC-INDIC DIGITS ONE, TWO
        '"\uff11"',  # FULLWIDTH DIGIT ONE
    ],
    ids=["superscript", "digit-and-superscript", "arabic-indic", "fullwidth"],
)
def test_non_ascii_digits_are_foreign_tags(header: str) -> None:
    assert versions_in(header) == []


def test_if_none_match_with_the_current_tag_matches() -> None:
    task = task_at(START)
    assert matches_none(etag_of(task), task)
    assert matches_none(f"W/{etag_of(task)}", task)  # weak comparison
    assert matches_none(f' "other" , W/"x",{etag_of(task)} ', task)


def test_if_none_match_star_matches_any_task() -> None:
    assert matches_none("*", task_at(START))
    assert matches_none('"other", *', task_at(START))


def test_if_none_match_with_other_tags_does_not_match() -> None:
    task = task_at(START)
    stale = etag_of(task_at(START - timedelta(microseconds=1)))
    assert not matches_none(stale, task)
    assert not matches_none(f"W/{stale}", task)
    assert not matches_none('"foreign"', task)
    assert not matches_none(etag_of(task).strip('"'), task)  # unquoted
    assert not matches_none("", task)
