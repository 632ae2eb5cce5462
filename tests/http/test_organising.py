"""Organising tasks over HTTP: priorities, dues in time zones, tags and their vocabulary,
search, filters, sorts and cursors, and the user's time zone."""

from datetime import UTC, date, datetime, timedelta
from typing import Any, get_args

import pytest

from domain.queries import TaskSort
from entrypoints.http.tasks import SortName
from tests.http.support import (
    Account,
    Client,
    assert_problem,
    assert_user,
    create_task,
    error_fields,
    parse_timestamp,
)


def tasks_of(client: Client, account: Account, **params: Any) -> dict[str, Any]:
    response = client.get("/api/tasks", params=params, headers=account.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def titles_of(client: Client, account: Account, **params: Any) -> list[str]:
    return [t["title"] for t in tasks_of(client, account, **params)["tasks"]]


def walk(client: Client, account: Account, **params: Any) -> list[str]:
    """Every page of a list, one task at a time with its cursor."""
    titles, cursor = [], None
    for _ in range(100):
        page = tasks_of(
            client, account, limit=1, **params, **({"cursor": cursor} if cursor else {})
        )
        titles += [t["title"] for t in page["tasks"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return titles
    raise AssertionError("the walk does not end")


def stored_state(client: Client, account: Account) -> list[dict[str, Any]]:
    return tasks_of(client, account, limit=1000)["tasks"]


# --- the task's new keys ----------------------------------------------------------------------


def test_a_new_task_has_the_defaults_of_every_new_key(client: Client, alice: Account) -> None:
    task = create_task(client, alice, title="Plain")
    assert (task["priority"], task["due"], task["tags"], task["completed_at"]) == (
        "none",
        None,
        [],
        None,
    )


def test_a_task_keeps_its_priority_due_and_tags(client: Client, alice: Account) -> None:
    task = create_task(
        client,
        alice,
        title="Board numbers",
        priority="high",
        due={"date": "2026-12-11", "time": "17:30", "timezone": "Europe/Lisbon"},
        tags=["work", " Board ", "WORK"],
    )
    assert task["priority"] == "high"
    assert task["due"] == {
        "date": "2026-12-11",
        "time": "17:30:00",
        "timezone": "Europe/Lisbon",
        "at": "2026-12-11T17:30:00Z",
    }
    assert task["tags"] == ["Board", "work"]
    read = client.get(f"/api/tasks/{task['id']}", headers=alice.headers).json()
    assert read == task


def test_an_all_day_due_has_no_instant(client: Client, alice: Account) -> None:
    task = create_task(client, alice, due={"date": "2026-12-11", "timezone": "Asia/Tokyo"})
    assert task["due"] == {"date": "2026-12-11", "time": None, "timezone": "Asia/Tokyo", "at": None}


def test_a_due_without_a_zone_takes_the_users_at_the_time_of_writing(
    client: Client, alice: Account
) -> None:
    assert (
        client.patch(
            "/api/auth/me", json={"timezone": "America/New_York"}, headers=alice.headers
        ).status_code
        == 200
    )
    first = create_task(client, alice, due={"date": "2026-07-01", "time": "09:00"})
    assert first["due"]["timezone"] == "America/New_York"
    assert first["due"]["at"] == "2026-07-01T13:00:00Z"
    client.patch("/api/auth/me", json={"timezone": "Asia/Tokyo"}, headers=alice.headers)
    # The stored due keeps the zone it was written in.
    again = client.get(f"/api/tasks/{first['id']}", headers=alice.headers).json()
    assert again["due"]["timezone"] == "America/New_York"


def test_skipped_and_repeated_local_times_read_as_rfc_5545_does(
    client: Client, alice: Account
) -> None:
    skipped = create_task(
        client, alice, due={"date": "2026-03-08", "time": "02:30", "timezone": "America/New_York"}
    )
    assert skipped["due"]["time"] == "02:30:00"
    assert skipped["due"]["at"] == "2026-03-08T07:30:00Z"
    repeated = create_task(
        client, alice, due={"date": "2026-11-01", "time": "01:30", "timezone": "America/New_York"}
    )
    assert repeated["due"]["at"] == "2026-11-01T05:30:00Z"


def test_completed_at_follows_completion(client: Client, alice: Account) -> None:
    task = create_task(client, alice)
    url = f"/api/tasks/{task['id']}"
    done = client.patch(url, json={"completed": True}, headers=alice.headers).json()
    completed_at = parse_timestamp(done["completed_at"])
    again = client.patch(url, json={"completed": True, "title": "x"}, headers=alice.headers).json()
    assert parse_timestamp(again["completed_at"]) == completed_at
    reopened = client.patch(url, json={"completed": False}, headers=alice.headers).json()
    assert reopened["completed_at"] is None
    created_done = create_task(client, alice, completed=True)
    assert created_done["completed_at"] == created_done["created_at"]


def test_an_update_changes_only_the_new_fields_it_names(client: Client, alice: Account) -> None:
    task = create_task(
        client, alice, priority="low", due={"date": "2026-12-11"}, tags=["home"], description="d"
    )
    url = f"/api/tasks/{task['id']}"
    retitled = client.patch(url, json={"title": "New"}, headers=alice.headers).json()
    assert (retitled["priority"], retitled["due"], retitled["tags"]) == (
        "low",
        task["due"],
        ["home"],
    )
    cleared = client.put(url, json={"due": None, "tags": []}, headers=alice.headers).json()
    assert (cleared["due"], cleared["tags"], cleared["priority"]) == (None, [], "low")


def test_the_first_spelling_of_a_tag_is_kept_everywhere(client: Client, alice: Account) -> None:
    create_task(client, alice, tags=["work"])
    later = create_task(client, alice, tags=["Work", "Home"])
    assert later["tags"] == ["Home", "work"]


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"priority": "urgent"}, {"priority"}),
        ({"priority": None}, {"priority"}),
        ({"priority": 3}, {"priority"}),
        ({"due": {"date": "2026-02-29"}}, {"due.date"}),
        ({"due": {"date": "2026-12-10", "time": "24:00"}}, {"due.time"}),
        ({"due": {"date": "2026-12-10", "timezone": "../../etc/passwd"}}, {"due.timezone"}),
        ({"due": {"date": "2026-12-10", "timezone": "Mars/Olympus"}}, {"due.timezone"}),
        ({"due": {"date": "2026-12-10", "timezone": "UTC\u0000"}}, {"due.timezone"}),
        (
            {"due": {"date": "9999-12-31", "time": "23:00", "timezone": "America/Los_Angeles"}},
            {"due"},
        ),
        ({"due": {"time": "10:00"}}, {"due.date"}),
        ({"due": "tomorrow"}, {"due"}),
        ({"tags": ["a/b"]}, {"tags.0"}),
        ({"tags": ["ok", "a,b"]}, {"tags.1"}),
        ({"tags": ["x" * 41]}, {"tags.0"}),
        ({"tags": ["bell\u0007"]}, {"tags.0"}),
        ({"tags": [f"t{n}" for n in range(21)]}, {"tags"}),
        ({"tags": "work"}, {"tags"}),
        ({"tags": [1]}, {"tags.0", "tags[0]"}),
    ],
)
@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_a_bad_field_is_422_naming_it_and_changes_nothing(
    client: Client, alice: Account, body: dict[str, Any], fields: set[str], method: str
) -> None:
    task = create_task(client, alice, title="Keep")
    before = stored_state(client, alice)
    if method == "POST":
        response = client.post("/api/tasks", json={"title": "t", **body}, headers=alice.headers)
    else:
        response = client.patch(f"/api/tasks/{task['id']}", json=body, headers=alice.headers)
    named = error_fields(response)
    assert named and named <= fields, named
    assert stored_state(client, alice) == before


# --- the user's time zone ---------------------------------------------------------------------


def test_the_user_has_a_time_zone_utc_by_default_and_sets_it(
    client: Client, alice: Account
) -> None:
    assert alice.user["timezone"] == "UTC"
    response = client.patch(
        "/api/auth/me", json={"timezone": "Asia/Calcutta"}, headers=alice.headers
    )
    assert response.status_code == 200
    assert assert_user(response.json(), alice.email)["timezone"] == "Asia/Calcutta"
    me = client.get("/api/auth/me", headers=alice.headers).json()
    assert me["timezone"] == "Asia/Calcutta"


@pytest.mark.parametrize(
    "timezone",
    ["", "europe/lisbon", "localtime", "posixrules", "../etc/passwd", "Mars/Olympus", 5, None],
)
def test_a_time_zone_that_is_not_an_iana_name_is_422(
    client: Client, alice: Account, timezone: object
) -> None:
    response = client.patch("/api/auth/me", json={"timezone": timezone}, headers=alice.headers)
    assert error_fields(response) == {"timezone"}
    assert client.get("/api/auth/me", headers=alice.headers).json()["timezone"] == "UTC"


def test_changing_the_time_zone_needs_a_token(client: Client) -> None:
    response = client.patch("/api/auth/me", json={"timezone": "UTC"})
    assert_problem(response, 401, "Not authenticated")


# --- filters ----------------------------------------------------------------------------------


@pytest.fixture
def organised(client: Client, alice: Account, bob: Account) -> Account:
    today = datetime.now(UTC).date()
    create_task(
        client,
        alice,
        title="Old milk",
        priority="low",
        due={"date": str(today - timedelta(days=3))},
        tags=["home"],
    )
    create_task(
        client,
        alice,
        title="Oat milk",
        priority="high",
        due={"date": str(today + timedelta(days=3))},
        tags=["home", "errand"],
    )
    create_task(
        client,
        alice,
        title="Report",
        description="numbers for the board",
        priority="medium",
        tags=["work"],
    )
    create_task(
        client,
        alice,
        title="Done report",
        completed=True,
        due={"date": str(today - timedelta(days=1))},
        tags=["work"],
    )
    create_task(client, alice, title="50% off", description="a_b \\ c")
    create_task(client, bob, title="Bob's milk", tags=["home"], priority="high")
    return alice


def test_priority_keeps_any_of_those_given(client: Client, organised: Account) -> None:
    assert set(titles_of(client, organised, priority="high")) == {"Oat milk"}
    assert set(titles_of(client, organised, priority=["high", "low"])) == {"Oat milk", "Old milk"}


def test_tag_keeps_the_tasks_with_every_tag_given(client: Client, organised: Account) -> None:
    assert set(titles_of(client, organised, tag="HOME")) == {"Old milk", "Oat milk"}
    assert titles_of(client, organised, tag=["home", "errand"]) == ["Oat milk"]
    page = tasks_of(client, organised, tag="nothing-like-it")
    assert (page["tasks"], page["total"]) == ([], 0)


def test_q_keeps_the_tasks_containing_every_word(client: Client, organised: Account) -> None:
    assert set(titles_of(client, organised, q="MILK")) == {"Old milk", "Oat milk"}
    assert titles_of(client, organised, q="oat milk") == ["Oat milk"]
    assert titles_of(client, organised, q="board numbers") == ["Report"]
    assert titles_of(client, organised, q="at") == ["Oat milk"]  # a substring, not a word
    assert titles_of(client, organised, q="%") == ["50% off"]
    assert titles_of(client, organised, q="_") == ["50% off"]
    assert titles_of(client, organised, q="\\") == ["50% off"]
    assert titles_of(client, organised, q="' OR 1=1 --") == []


def test_due_bounds_has_due_and_overdue(client: Client, organised: Account) -> None:
    today = datetime.now(UTC).date()
    assert set(titles_of(client, organised, has_due="true")) == {
        "Old milk",
        "Oat milk",
        "Done report",
    }
    assert set(titles_of(client, organised, has_due="false")) == {"Report", "50% off"}
    assert titles_of(client, organised, due_after=str(today)) == ["Oat milk"]
    assert set(titles_of(client, organised, due_before=str(today))) == {"Old milk", "Done report"}
    # Done report's due has passed, but it is completed: not overdue.
    assert titles_of(client, organised, overdue="true") == ["Old milk"]
    assert "Old milk" not in titles_of(client, organised, overdue="false")


@pytest.mark.parametrize(
    ("params", "total"), [({"has_due": "false"}, 2), ({"overdue": "false"}, 4)]
)
def test_a_false_filter_narrows_the_total_too(
    client: Client, organised: Account, params: dict[str, str], total: int
) -> None:
    assert tasks_of(client, organised, limit=1, **params)["total"] == total


def test_filters_combine_and_total_counts_all_that_match(
    client: Client, organised: Account
) -> None:
    page = tasks_of(client, organised, tag="home", q="milk", completed="false", limit=1)
    assert page["total"] == 2
    assert len(page["tasks"]) == 1


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"priority": "urgent"}, "priority"),
        ({"q": ""}, "q"),
        ({"q": "   "}, "q"),
        ({"q": "x" * 201}, "q"),
        ({"due_after": "2026-02-29"}, "due_after"),
        ({"due_before": "tomorrow"}, "due_before"),
        ({"has_due": "yes"}, "has_due"),
        ({"overdue": "1"}, "overdue"),
        ({"sort": "random"}, "sort"),
        ({"sort": "--due"}, "sort"),
        ({"tag": "a/b"}, "tag"),
        ({"tag": "bell\u0007"}, "tag"),
        ({"tag": "nul\u0000"}, "tag"),
    ],
)
def test_a_bad_parameter_is_422_naming_it(
    client: Client, alice: Account, params: dict[str, str], field: str
) -> None:
    response = client.get("/api/tasks", params=params, headers=alice.headers)
    assert field in error_fields(response)


# --- sorts and cursors -------------------------------------------------------------------------


def test_each_sort_orders_the_list(client: Client, organised: Account) -> None:
    assert titles_of(client, organised, sort="-priority")[:2] == ["Oat milk", "Report"]
    assert titles_of(client, organised, sort="priority")[-1] == "Oat milk"
    assert titles_of(client, organised, sort="due")[:3] == ["Old milk", "Done report", "Oat milk"]
    assert titles_of(client, organised, sort="-due")[:3] == ["Oat milk", "Done report", "Old milk"]
    # Tasks without a due come last in both directions.
    assert set(titles_of(client, organised, sort="due")[3:]) == {"Report", "50% off"}
    assert set(titles_of(client, organised, sort="-due")[3:]) == {"Report", "50% off"}
    assert titles_of(client, organised, sort="title") == [
        "50% off",
        "Done report",
        "Oat milk",
        "Old milk",
        "Report",
    ]
    newest = titles_of(client, organised)
    assert titles_of(client, organised, sort="created_at") == list(reversed(newest))


@pytest.mark.parametrize("sort", [sort.value for sort in TaskSort])
def test_a_cursor_walks_every_sort_without_skipping_or_repeating(
    client: Client, organised: Account, sort: str
) -> None:
    assert walk(client, organised, sort=sort) == titles_of(client, organised, sort=sort)
    assert walk(client, organised, sort=sort, tag="home") == titles_of(
        client, organised, sort=sort, tag="home"
    )


def test_a_cursor_is_refused_by_another_sort_or_other_filters(
    client: Client, organised: Account
) -> None:
    cursor = tasks_of(client, organised, limit=1, sort="due")["next_cursor"]
    assert cursor is not None
    for params in ({"sort": "-due"}, {"sort": "due", "tag": "home"}, {}):
        response = client.get(
            "/api/tasks", params={"cursor": cursor, **params}, headers=organised.headers
        )
        assert error_fields(response) == {"cursor"}
    same = client.get(
        "/api/tasks",
        params={"cursor": cursor, "sort": "due", "limit": 5},
        headers=organised.headers,
    )
    assert same.status_code == 200


# --- the vocabulary of tags -------------------------------------------------------------------


def tags_of(client: Client, account: Account) -> list[dict[str, Any]]:
    response = client.get("/api/tags", headers=account.headers)
    assert response.status_code == 200, response.text
    tags: list[dict[str, Any]] = response.json()["tags"]
    return tags


def test_the_vocabulary_counts_open_and_all_tasks_per_tag(
    client: Client, organised: Account
) -> None:
    assert tags_of(client, organised) == [
        {"name": "errand", "open": 1, "total": 1},
        {"name": "home", "open": 2, "total": 2},
        {"name": "work", "open": 1, "total": 2},
    ]


def test_a_tag_no_task_carries_stays_at_zero_until_deleted(client: Client, alice: Account) -> None:
    task = create_task(client, alice, tags=["once"])
    client.patch(f"/api/tasks/{task['id']}", json={"tags": []}, headers=alice.headers)
    assert tags_of(client, alice) == [{"name": "once", "open": 0, "total": 0}]
    assert client.delete("/api/tags/ONCE", headers=alice.headers).status_code == 204
    assert tags_of(client, alice) == []


def test_renaming_a_tag_renames_it_on_every_task_and_moves_their_versions(
    client: Client, organised: Account
) -> None:
    before = {t["title"]: t for t in stored_state(client, organised)}
    response = client.patch("/api/tags/HOME", json={"name": "House"}, headers=organised.headers)
    assert response.status_code == 200
    assert response.json() == {"name": "House", "open": 2, "total": 2}
    after = {t["title"]: t for t in stored_state(client, organised)}
    assert after["Oat milk"]["tags"] == ["errand", "House"]
    assert after["Old milk"]["tags"] == ["House"]
    for title in ("Oat milk", "Old milk"):
        assert parse_timestamp(after[title]["updated_at"]) > parse_timestamp(
            before[title]["updated_at"]
        )
    assert after["Report"]["updated_at"] == before["Report"]["updated_at"]
    assert titles_of(client, organised, tag="house") == titles_of(client, organised, tag="House")


def test_a_change_of_case_only_is_a_rename(client: Client, organised: Account) -> None:
    response = client.patch("/api/tags/work", json={"name": "Work"}, headers=organised.headers)
    assert response.json() == {"name": "Work", "open": 1, "total": 2}


def test_renaming_to_another_tag_is_409_and_an_unknown_tag_404(
    client: Client, organised: Account, bob: Account
) -> None:
    before = tags_of(client, organised)
    taken = client.patch("/api/tags/home", json={"name": "WORK"}, headers=organised.headers)
    assert_problem(taken, 409, "Tag already exists")
    missing = client.patch("/api/tags/nope", json={"name": "x"}, headers=organised.headers)
    assert_problem(missing, 404, "Tag not found")
    assert_problem(client.delete("/api/tags/nope", headers=organised.headers), 404, "Tag not found")
    bad = client.patch("/api/tags/home", json={"name": "a/b"}, headers=organised.headers)
    assert error_fields(bad) == {"name"}
    assert tags_of(client, organised) == before
    # Bob's home is his own: Alice's rename never touched it, and his tasks keep it.
    assert tags_of(client, bob) == [{"name": "home", "open": 1, "total": 1}]


def test_deleting_a_tag_takes_it_off_every_task(
    client: Client, organised: Account, bob: Account
) -> None:
    assert client.delete("/api/tags/home", headers=organised.headers).status_code == 204
    assert titles_of(client, organised, tag="home") == []
    assert all("home" not in t["tags"] for t in stored_state(client, organised))
    assert [t["name"] for t in tags_of(client, organised)] == ["errand", "work"]
    assert [t["tags"] for t in stored_state(client, bob)] == [["home"]]


def test_the_tag_routes_need_a_token(client: Client) -> None:
    for method, path in (("GET", "/api/tags"), ("PATCH", "/api/tags/x"), ("DELETE", "/api/tags/x")):
        response = client.request(method, path, json={"name": "y"} if method == "PATCH" else None)
        assert_problem(response, 401, "Not authenticated")


def test_dates_in_answers_are_dates(client: Client, alice: Account) -> None:
    task = create_task(client, alice, due={"date": "2026-12-11"})
    assert date.fromisoformat(task["due"]["date"]) == date(2026, 12, 11)


def test_the_documented_sorts_are_the_domains() -> None:
    assert set(get_args(SortName)) == {sort.value for sort in TaskSort}
