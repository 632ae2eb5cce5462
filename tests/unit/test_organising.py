"""Priorities, dues in time zones, tags and the list query: the domain's rules on their own."""

from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from uuid import uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.due import Due, WrittenDue, parse_due, timezone_names, timezone_problems
from domain.errors import ValidationFailed
from domain.queries import TaskQuery, TaskSort, list_order, position_of, sort_key
from domain.tags import normalize_tags, sorted_tags, tag_key
from domain.tasks import Priority, Task, TaskChanges, apply_changes, new_task

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
OWNER = uuid4()


def due(raw_date: str, raw_time: str | None = None, timezone: str | None = None) -> Due:
    return parse_due(WrittenDue(raw_date, raw_time, timezone), default_timezone="UTC")


def fields_of(error: ValidationFailed) -> list[str]:
    return [e.field for e in error.errors]


# --- time zones -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["UTC", "Europe/Lisbon", "Asia/Calcutta", "America/New_York"])
def test_iana_names_and_links_are_time_zones(name: str) -> None:
    assert timezone_problems(name, "timezone") == []


@pytest.mark.parametrize(
    "name",
    [
        "",
        "europe/lisbon",
        "localtime",
        "posixrules",
        "../../etc/passwd",
        "/etc/localtime",
        "Mars/Olympus",
        "Europe/Lisbon\x00",
        "Europe/Lisbon ",
        "x" * 1000,
    ],
)
def test_anything_else_is_not_a_time_zone(name: str) -> None:
    assert [p.field for p in timezone_problems(name, "timezone")] == ["timezone"]


def test_the_names_come_from_the_tzdata_package() -> None:
    names = timezone_names()
    assert "Europe/Lisbon" in names
    assert len(names) > 400


# --- dues -------------------------------------------------------------------------------------


def test_an_all_day_due_has_no_instant_and_sorts_at_the_midnight_ending_its_date() -> None:
    lisbon = due("2026-12-10", timezone="Europe/Lisbon")
    assert lisbon.at is None
    assert lisbon.moment == datetime(2026, 12, 11, 0, 0, tzinfo=UTC)  # Lisbon is UTC in winter
    tokyo = due("2026-12-10", timezone="Asia/Tokyo")
    assert tokyo.moment == datetime(2026, 12, 10, 15, 0, tzinfo=UTC)


def test_a_timed_due_is_its_wall_time_in_its_zone() -> None:
    summer = due("2026-07-01", "17:30", "Europe/Lisbon")
    assert summer.at == datetime(2026, 7, 1, 16, 30, tzinfo=UTC)
    assert summer.time == time(17, 30)
    assert due("2026-07-01", "17:30:15", "Europe/Lisbon").time == time(17, 30, 15)


def test_a_time_skipped_by_the_change_of_clocks_takes_the_offset_from_before_it() -> None:
    # 2026-03-08 02:30 does not happen in New York (02:00 EST -> 03:00 EDT).
    skipped = due("2026-03-08", "02:30", "America/New_York")
    assert skipped.time == time(2, 30)  # the wall time as written
    assert skipped.at == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)  # -05:00, from before


def test_a_time_repeated_by_the_change_of_clocks_is_its_first_occurrence() -> None:
    # 2026-11-01 01:30 happens twice in New York (EDT, then EST).
    repeated = due("2026-11-01", "01:30", "America/New_York")
    assert repeated.at == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # -04:00, the first


def test_without_a_zone_the_due_is_in_the_default_one() -> None:
    written = WrittenDue("2026-12-10", "09:00")
    assert parse_due(written, default_timezone="Asia/Tokyo").timezone == "Asia/Tokyo"


@pytest.mark.parametrize(
    ("written", "fields"),
    [
        (WrittenDue("2026-02-29"), ["due.date"]),
        (WrittenDue("2026-13-01"), ["due.date"]),
        (WrittenDue("20261210"), ["due.date"]),
        (WrittenDue("2026-12-10T10:00"), ["due.date"]),
        (WrittenDue("1899-12-31"), ["due.date"]),
        (WrittenDue("\u0662\u0660\u0662\u0666-12-10"), ["due.date"]),  # Arabic-Indic digits
        (WrittenDue(""), ["due.date"]),
        (WrittenDue("2026-12-10", "24:00"), ["due.time"]),
        (WrittenDue("2026-12-10", "9:00"), ["due.time"]),
        (WrittenDue("2026-12-10", "09:00:60"), ["due.time"]),
        (WrittenDue("2026-12-10", "09:00:00.5"), ["due.time"]),
        (WrittenDue("2026-12-10", "09:00+01:00"), ["due.time"]),
        (WrittenDue("2026-12-10", None, "../../etc/passwd"), ["due.timezone"]),
        (WrittenDue("2026-12-10", None, "Mars/Olympus"), ["due.timezone"]),
        (WrittenDue("2026-12-10", None, "UTC\x00"), ["due.timezone"]),
        (WrittenDue("2026-02-30", "25:00", "Nowhere"), ["due.date", "due.time", "due.timezone"]),
    ],
)
def test_a_due_that_breaks_a_rule_names_each_dotted_field(
    written: WrittenDue, fields: list[str]
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_due(written, default_timezone="UTC")
    assert fields_of(caught.value) == fields


def test_an_instant_after_the_year_9999_is_refused_on_due() -> None:
    with pytest.raises(ValidationFailed) as caught:
        due("9999-12-31", "23:00", "America/Los_Angeles")
    assert fields_of(caught.value) == ["due"]
    # East of UTC the same wall time is still within the year.
    assert due("9999-12-31", "23:00", "Asia/Tokyo").at is not None
    assert due("9999-12-31", timezone="America/Los_Angeles").at is None


def test_the_first_and_last_dates_are_dues() -> None:
    assert due("1900-01-01", "00:00", "Pacific/Kiritimati").date == date(1900, 1, 1)
    assert due("9999-12-31").moment > due("9999-12-30").moment


# --- overdue ----------------------------------------------------------------------------------


def test_a_timed_due_has_passed_once_its_instant_is_before_now() -> None:
    at_noon = due("2026-12-07", "12:00")
    assert not at_noon.has_passed(NOW)
    assert at_noon.has_passed(NOW + timedelta(microseconds=1))


def test_an_all_day_due_has_passed_once_its_date_is_before_today_in_its_zone() -> None:
    # NOW is 12:00 UTC on the 7th: already the 8th in Kiritimati (+14), still the 7th in Honolulu.
    assert due("2026-12-07", timezone="Pacific/Kiritimati").has_passed(NOW)
    assert not due("2026-12-07", timezone="Pacific/Honolulu").has_passed(NOW)
    assert not due("2026-12-07", timezone="UTC").has_passed(NOW)
    assert due("2026-12-06", timezone="UTC").has_passed(NOW)


def test_only_an_open_task_is_overdue() -> None:
    yesterday = due("2026-12-06")
    task = new_task(
        task_id=uuid4(), owner_id=OWNER, title="t", description=None, completed=False, now=NOW
    )
    task = apply_changes(task, TaskChanges(due=yesterday), NOW)
    assert task.is_overdue(NOW)
    assert not apply_changes(task, TaskChanges(completed=True), NOW).is_overdue(NOW)
    assert not apply_changes(task, TaskChanges(due=None), NOW).is_overdue(NOW)


# --- completion -------------------------------------------------------------------------------


def test_completed_at_is_set_on_completion_kept_when_completed_again_cleared_on_reopening() -> None:
    task = new_task(
        task_id=uuid4(), owner_id=OWNER, title="t", description=None, completed=False, now=NOW
    )
    assert task.completed_at is None
    done = apply_changes(task, TaskChanges(completed=True), NOW + timedelta(hours=1))
    assert done.completed_at == NOW + timedelta(hours=1)
    again = apply_changes(done, TaskChanges(completed=True), NOW + timedelta(hours=2))
    assert again.completed_at == NOW + timedelta(hours=1)
    retitled = apply_changes(done, TaskChanges(title="u"), NOW + timedelta(hours=3))
    assert retitled.completed_at == NOW + timedelta(hours=1)
    assert apply_changes(done, TaskChanges(completed=False), NOW).completed_at is None


def test_a_task_created_completed_was_completed_as_it_was_created() -> None:
    task = new_task(
        task_id=uuid4(), owner_id=OWNER, title="t", description=None, completed=True, now=NOW
    )
    assert task.completed_at == task.created_at == NOW


# --- tags -------------------------------------------------------------------------------------


def test_tags_are_trimmed_and_collapse_by_case_to_the_first_spelling() -> None:
    assert normalize_tags(["  Work ", "home", "WORK", "Home", "straße", "STRASSE"]) == (
        "Work",
        "home",
        "straße",
    )


def test_tags_sort_case_insensitively() -> None:
    assert sorted_tags(["b", "A", "a", "C"]) == ("A", "a", "b", "C")
    assert tag_key("Straße") == tag_key("STRASSE")


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (["   "], "tags.0"),
        (["x" * 41], "tags.0"),
        (["ok", "a/b"], "tags.1"),
        (["a,b"], "tags.0"),
        (["tab\there"], "tags.0"),
        (["nul\x00"], "tags.0"),
        (["bell\x07"], "tags.0"),
        ([f"tag {n}" for n in range(21)], "tags"),
    ],
)
def test_a_tag_that_breaks_a_rule_names_its_place(raw: list[str], field: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        normalize_tags(raw)
    assert fields_of(caught.value) == [field]


def test_twenty_tags_are_allowed_and_duplicates_do_not_count() -> None:
    assert len(normalize_tags([f"tag {n}" for n in range(20)])) == 20
    assert len(normalize_tags([f"tag {n % 20}" for n in range(40)])) == 20
    assert normalize_tags(["x" * 40]) == ("x" * 40,)


# --- priorities ------------------------------------------------------------------------------


def test_priorities_rank_none_low_medium_high() -> None:
    ranks = [p.rank for p in (Priority.NONE, Priority.LOW, Priority.MEDIUM, Priority.HIGH)]
    assert ranks == [0, 1, 2, 3]


# --- the list query ---------------------------------------------------------------------------


@pytest.mark.parametrize("q", ["", "   ", "x" * 201, "milk\x00"])
def test_a_search_out_of_bounds_is_refused_on_q(q: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        TaskQuery(search=q)
    assert fields_of(caught.value) == ["q"]


def test_a_search_is_its_lowercased_words() -> None:
    assert TaskQuery(search="  Oat   MILK ").words == ("oat", "milk")
    assert TaskQuery(search="x" * 200).words == ("x" * 200,)


def test_the_digest_names_the_sort_and_the_filters_but_not_the_page() -> None:
    plain = TaskQuery()
    assert plain.digest() == TaskQuery(limit=5, offset=9).digest()
    others = [
        TaskQuery(sort=TaskSort.DUE),
        TaskQuery(completed=False),
        TaskQuery(priorities=frozenset({Priority.HIGH})),
        TaskQuery(tags=("work",)),
        TaskQuery(search="milk"),
        TaskQuery(due_after=date(2026, 1, 1)),
        TaskQuery(due_before=date(2026, 1, 1)),
        TaskQuery(has_due=True),
        TaskQuery(overdue=True),
    ]
    digests = {query.digest() for query in others}
    assert plain.digest() not in digests
    assert len(digests) == len(others)
    assert TaskQuery(tags=("Work",)).digest() == TaskQuery(tags=("work",)).digest()


# Random tasks: every field a list can filter or sort by, with ties on purpose.
moments = st.integers(0, 6).map(lambda n: NOW + timedelta(hours=n))
dues = st.none() | st.builds(
    lambda day, hour, zone: Due(
        date(2026, 12, 1) + timedelta(days=day),
        None if hour is None else time(hour),
        zone,
    ),
    st.integers(0, 12),
    st.none() | st.integers(0, 23),
    st.sampled_from(["UTC", "Asia/Tokyo", "America/New_York"]),
)
tasks = st.builds(
    lambda title, completed, created, priority, task_due, tags: new_task(
        task_id=uuid4(),
        owner_id=OWNER,
        title=title,
        description=None,
        completed=completed,
        now=created,
        priority=priority,
        due=task_due,
        tags=normalize_tags(tags),
    ),
    st.sampled_from(["Milk", "milk", "Bread", "oat milk", "Zebra", "apple"]),
    st.booleans(),
    moments,
    st.sampled_from(Priority),
    dues,
    st.lists(st.sampled_from(["work", "Home", "errand"]), max_size=3),
)


@given(st.lists(tasks, max_size=25), st.sampled_from(TaskSort))
@settings(max_examples=200)
def test_list_order_is_the_sort_with_ties_newest_first(some: list[Task], sort: TaskSort) -> None:
    ordered = sorted(some, key=lambda t: list_order(position_of(t, sort), sort))
    for first, second in pairwise(ordered):
        a, b = sort_key(first, sort), sort_key(second, sort)
        if a is None or b is None:
            assert b is None  # tasks without a due come last, in both directions
            if a is not None:
                continue
        elif a != b:
            assert (a > b) if sort.descending else (a < b)
            continue
        assert (first.created_at, first.id) > (second.created_at, second.id)
