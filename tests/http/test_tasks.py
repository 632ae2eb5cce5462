"""The task endpoints: create, list, read, update, delete, and the ownership rule."""

import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from tests.http.support import (
    Account,
    Client,
    assert_problem,
    assert_task,
    bearer,
    create_task,
    error_fields,
    log_in,
    parse_timestamp,
)

# --- create ---------------------------------------------------------------------------------


def test_create_answers_201_with_location_and_all_seven_keys(
    client: Client, alice: Account
) -> None:
    response = client.post("/api/tasks", json={"title": "Buy milk"}, headers=alice.headers)

    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    task = assert_task(response.json())
    assert response.headers["location"] == f"/api/tasks/{task['id']}"
    assert task["title"] == "Buy milk"
    assert task["description"] is None
    assert task["completed"] is False
    assert task["user_id"] == alice.id
    assert task["created_at"] == task["updated_at"]
    fetched = client.get(response.headers["location"], headers=alice.headers)
    assert fetched.status_code == 200
    assert fetched.json() == task


def test_create_with_every_field(client: Client, alice: Account) -> None:
    task = create_task(
        client,
        alice,
        title="Write report",
        description="Quarterly, **with** charts",
        completed=True,
    )

    assert task["title"] == "Write report"
    assert task["description"] == "Quarterly, **with** charts"
    assert task["completed"] is True


def test_create_trims_the_title(client: Client, alice: Account) -> None:
    assert create_task(client, alice, title="  \t Buy milk \n ")["title"] == "Buy milk"


def test_create_accepts_the_boundaries(client: Client, alice: Account) -> None:
    title = "t" * 200
    task = create_task(client, alice, title=f"   {title}   ", description="d" * 10_000)

    assert task["title"] == title
    assert task["description"] == "d" * 10_000
    assert create_task(client, alice, title="x", description="")["description"] == ""
    assert create_task(client, alice, title="✓" * 200)["title"] == "✓" * 200


def test_create_ignores_unknown_fields_and_server_owned_fields(
    client: Client, alice: Account, bob: Account
) -> None:
    chosen_id = str(uuid.uuid4())
    response = client.post(
        "/api/tasks",
        json={
            "title": "Mine",
            "id": chosen_id,
            "user_id": bob.id,
            "created_at": "2000-01-01T00:00:00Z",
            "updated_at": "2000-01-01T00:00:00Z",
            "colour": "red",
            "assignee": "bob",
        },
        headers=alice.headers,
    )

    assert response.status_code == 201
    task = assert_task(response.json())
    assert task["id"] != chosen_id
    assert task["user_id"] == alice.id
    assert parse_timestamp(task["created_at"]).year > 2000
    assert parse_timestamp(task["updated_at"]).year > 2000
    assert "colour" not in task
    assert client.get("/api/tasks", headers=bob.headers).json()["total"] == 0
    assert client.get(f"/api/tasks/{chosen_id}", headers=alice.headers).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"title": ""}, "title", id="empty-title"),
        pytest.param({"title": "   \t\n "}, "title", id="blank-title"),
        pytest.param({"title": "t" * 201}, "title", id="201-title"),
        pytest.param({"title": "  " + "t" * 201 + "  "}, "title", id="201-title-trimmed"),
        pytest.param({"title": "a\x00b"}, "title", id="nul-title"),
        pytest.param({"title": "ok", "description": "d" * 10_001}, "description", id="10001"),
        pytest.param({"title": "ok", "description": "a\x00b"}, "description", id="nul-desc"),
        pytest.param({"title": "ok", "completed": "true"}, "completed", id="completed-string"),
        pytest.param({"title": "ok", "completed": 1}, "completed", id="completed-int"),
        pytest.param({"title": "ok", "completed": None}, "completed", id="completed-null"),
        pytest.param({"title": 42}, "title", id="title-int"),
        pytest.param({"title": None}, "title", id="title-null"),
        pytest.param({"title": ["a"]}, "title", id="title-list"),
        pytest.param({"title": "ok", "description": 5}, "description", id="description-int"),
    ],
)
def test_create_rejects_rule_breaking_json_with_422(
    client: Client, alice: Account, body: dict[str, Any], field: str
) -> None:
    response = client.post("/api/tasks", json=body, headers=alice.headers)

    assert_problem(response, 422, "Validation failed")
    assert field in error_fields(response)
    assert client.get("/api/tasks", headers=alice.headers).json()["total"] == 0


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b'[{"title": "x"}]', id="array"),
        pytest.param(b'"title"', id="string"),
        pytest.param(b"null", id="null"),
        pytest.param(b"42", id="number"),
        pytest.param(b"{}", id="missing-title"),
    ],
)
def test_create_with_a_body_of_the_wrong_shape_is_422(
    client: Client, alice: Account, content: bytes
) -> None:
    response = client.post(
        "/api/tasks", content=content, headers={**alice.headers, "content-type": "application/json"}
    )

    assert_problem(response, 422, "Validation failed")


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b'{"title": "x"', id="truncated"),
        pytest.param(b"{'title': 'x'}", id="single-quotes"),
        pytest.param(b"title=x", id="form"),
        pytest.param(b'{"title": "\\ud800"}', id="lone-surrogate"),
        pytest.param(b'{"title": "x"} trailing', id="trailing"),
    ],
)
def test_create_with_malformed_json_is_400(client: Client, alice: Account, content: bytes) -> None:
    response = client.post(
        "/api/tasks",
        content=content,
        headers={**alice.headers, "content-type": "application/json"},
    )

    assert_problem(response, 400)


def test_create_with_a_body_over_one_mebibyte_is_413(client: Client, alice: Account) -> None:
    body = b'{"title": "x", "description": "' + b"d" * (1024 * 1024) + b'"}'

    response = client.post(
        "/api/tasks", content=body, headers={**alice.headers, "content-type": "application/json"}
    )

    assert_problem(response, 413)
    assert client.get("/api/tasks", headers=alice.headers).json()["total"] == 0


# --- list -----------------------------------------------------------------------------------


def test_list_is_empty_with_the_default_page(client: Client, alice: Account) -> None:
    response = client.get("/api/tasks", headers=alice.headers)

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "tasks": [],
        "total": 0,
        "limit": 100,
        "offset": 0,
        "next_cursor": None,
    }


def test_list_is_newest_first_and_paged(client: Client, alice: Account) -> None:
    created = [create_task(client, alice, title=f"Task {n}") for n in range(5)]
    newest_first = list(reversed(created))

    everything = client.get("/api/tasks", headers=alice.headers).json()
    assert everything["tasks"] == newest_first
    assert everything["total"] == 5
    assert (everything["limit"], everything["offset"]) == (100, 0)

    page = client.get("/api/tasks?limit=2&offset=1", headers=alice.headers).json()
    assert isinstance(page.pop("next_cursor"), str)  # more pages follow
    assert page == {"tasks": newest_first[1:3], "total": 5, "limit": 2, "offset": 1}

    pages = [
        client.get(f"/api/tasks?limit=2&offset={offset}", headers=alice.headers).json()
        for offset in (0, 2, 4)
    ]
    assert [task for page in pages for task in page["tasks"]] == newest_first
    assert all(page["total"] == 5 for page in pages)

    beyond = client.get("/api/tasks?offset=10", headers=alice.headers).json()
    assert beyond == {
        "tasks": [],
        "total": 5,
        "limit": 100,
        "offset": 10,
        "next_cursor": None,
    }

    boundaries = client.get("/api/tasks?limit=1000&offset=0", headers=alice.headers)
    assert boundaries.status_code == 200
    assert boundaries.json()["limit"] == 1000
    assert client.get("/api/tasks?limit=1", headers=alice.headers).json()["tasks"] == [
        newest_first[0]
    ]


def test_list_filters_on_completed(client: Client, alice: Account) -> None:
    done = [create_task(client, alice, title=f"Done {n}", completed=True) for n in range(3)]
    open_ = [create_task(client, alice, title=f"Open {n}") for n in range(2)]

    completed = client.get("/api/tasks?completed=true", headers=alice.headers).json()
    assert completed["tasks"] == list(reversed(done))
    assert completed["total"] == 3

    not_completed = client.get("/api/tasks?completed=false", headers=alice.headers).json()
    assert not_completed["tasks"] == list(reversed(open_))
    assert not_completed["total"] == 2

    paged = client.get("/api/tasks?completed=true&limit=1&offset=1", headers=alice.headers)
    assert paged.json() == {
        "tasks": [done[1]],
        "total": 3,
        "limit": 1,
        "offset": 1,
        "next_cursor": paged.json()["next_cursor"],
    }
    assert isinstance(paged.json()["next_cursor"], str)  # done[2] follows


def test_list_never_shows_another_users_tasks(client: Client, alice: Account, bob: Account) -> None:
    mine = create_task(client, alice, title="Alice's")
    create_task(client, bob, title="Bob's", completed=True)
    create_task(client, bob, title="Bob's other")

    for query in ["", "?completed=true", "?completed=false", "?limit=1000"]:
        page = client.get(f"/api/tasks{query}", headers=alice.headers).json()
        assert all(task["user_id"] == alice.id for task in page["tasks"])
    listing = client.get("/api/tasks", headers=alice.headers).json()
    assert listing["tasks"] == [mine]
    assert listing["total"] == 1
    assert client.get("/api/tasks?completed=true", headers=alice.headers).json()["total"] == 0
    assert client.get("/api/tasks", headers=bob.headers).json()["total"] == 2


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=-1", "limit"),
        ("limit=abc", "limit"),
        ("limit=1.5", "limit"),
        ("limit=", "limit"),
        ("offset=-1", "offset"),
        ("offset=abc", "offset"),
        ("completed=maybe", "completed"),
        ("completed=1", "completed"),
        ("completed=", "completed"),
    ],
)
def test_list_with_bad_query_parameters_is_422(
    client: Client, alice: Account, query: str, field: str
) -> None:
    response = client.get(f"/api/tasks?{query}", headers=alice.headers)

    assert_problem(response, 422, "Validation failed")
    assert field in error_fields(response)


def test_list_with_a_huge_offset_is_not_a_server_error(client: Client, alice: Account) -> None:
    create_task(client, alice)

    response = client.get(f"/api/tasks?offset={10**20}", headers=alice.headers)

    # offset >= 0 is the only rule: an empty page, or a 422 naming offset; never a 500.
    if response.status_code == 200:
        assert response.json()["tasks"] == []
        assert response.json()["total"] == 1
    else:
        assert "offset" in error_fields(response)


# --- read -----------------------------------------------------------------------------------


def test_get_one_answers_the_task(client: Client, alice: Account) -> None:
    task = create_task(client, alice, title="Read me", description="Details")

    response = client.get(f"/api/tasks/{task['id']}", headers=alice.headers)

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert assert_task(response.json()) == task


def test_get_one_accepts_an_uppercase_uuid(client: Client, alice: Account) -> None:
    task = create_task(client, alice)

    response = client.get(f"/api/tasks/{task['id'].upper()}", headers=alice.headers)

    assert response.status_code == 200
    assert response.json() == task


METHODS_ON_ONE = ["GET", "PUT", "PATCH", "DELETE"]


def _on_one(client: Client, method: str, task_id: str, account: Account) -> Any:
    body = {"title": "Changed", "completed": True} if method in {"PUT", "PATCH"} else None
    return client.request(method, f"/api/tasks/{task_id}", json=body, headers=account.headers)


@pytest.mark.parametrize("method", METHODS_ON_ONE)
def test_a_random_uuid_is_404(client: Client, alice: Account, method: str) -> None:
    create_task(client, alice)

    response = _on_one(client, method, str(uuid.uuid4()), alice)

    assert_problem(response, 404, "Task not found")


@pytest.mark.parametrize("method", METHODS_ON_ONE)
@pytest.mark.parametrize("task_id", ["not-a-uuid", "123", "0000-1111"])
def test_a_path_id_that_is_not_a_uuid_is_422(
    client: Client, alice: Account, method: str, task_id: str
) -> None:
    response = _on_one(client, method, task_id, alice)

    assert_problem(response, 422, "Validation failed")


@pytest.mark.parametrize("method", METHODS_ON_ONE)
def test_another_users_task_is_403_and_stays_unchanged(
    client: Client, alice: Account, bob: Account, method: str
) -> None:
    task = create_task(client, alice, title="Private", description="Secret")

    response = _on_one(client, method, task["id"], bob)

    assert_problem(response, 403, "Access denied: task belongs to another user")
    assert "Private" not in response.text
    assert "Secret" not in response.text
    after = client.get(f"/api/tasks/{task['id']}", headers=alice.headers)
    assert after.status_code == 200
    assert after.json() == task


def _stored_rows(database_url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url) as connection:
        return connection.execute(
            """SELECT id, user_id, title, description, completed, created_at, updated_at
               FROM tasks ORDER BY id"""
        ).fetchall()


@pytest.mark.parametrize("method", [*METHODS_ON_ONE, "PUT-if-match", "DELETE-if-match"])
def test_another_users_task_is_refused_and_nothing_of_theirs_changes_in_the_database(
    client: Client, alice: Account, bob: Account, clean_database: str, method: str
) -> None:
    theirs = create_task(client, alice, title="Private", description="Secret")
    create_task(client, bob, title="Bob's own")
    before = _stored_rows(clean_database)
    verb, _, conditional = method.partition("-")
    headers = dict(bob.headers)
    if conditional:
        headers["If-Match"] = client.get(
            f"/api/tasks/{theirs['id']}", headers=alice.headers
        ).headers["etag"]
    body = {"title": "Taken over", "completed": True} if verb in {"PUT", "PATCH"} else None

    response = client.request(verb, f"/api/tasks/{theirs['id']}", json=body, headers=headers)

    assert_problem(response, 403, "Access denied: task belongs to another user")
    assert _stored_rows(clean_database) == before


# --- update ---------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_update_changes_only_the_fields_sent(client: Client, alice: Account, method: str) -> None:
    task = create_task(client, alice, title="Original", description="Keep me", completed=False)
    path = f"/api/tasks/{task['id']}"

    response = client.request(method, path, json={"completed": True}, headers=alice.headers)

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    updated = assert_task(response.json())
    assert updated["completed"] is True
    assert updated["title"] == "Original"
    assert updated["description"] == "Keep me"
    assert updated["id"] == task["id"]
    assert updated["user_id"] == alice.id
    assert updated["created_at"] == task["created_at"]
    assert parse_timestamp(updated["updated_at"]) > parse_timestamp(task["updated_at"])

    retitled = client.request(method, path, json={"title": "  Renamed  "}, headers=alice.headers)
    assert retitled.status_code == 200
    assert retitled.json()["title"] == "Renamed"
    assert retitled.json()["description"] == "Keep me"
    assert retitled.json()["completed"] is True
    assert retitled.json()["created_at"] == task["created_at"]
    assert parse_timestamp(retitled.json()["updated_at"]) > parse_timestamp(updated["updated_at"])

    assert client.get(path, headers=alice.headers).json() == retitled.json()


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_update_with_description_null_clears_it(
    client: Client, alice: Account, method: str
) -> None:
    task = create_task(client, alice, title="T", description="Old", completed=True)
    path = f"/api/tasks/{task['id']}"

    response = client.request(method, path, json={"description": None}, headers=alice.headers)

    assert response.status_code == 200
    assert response.json()["description"] is None
    assert response.json()["title"] == "T"
    assert response.json()["completed"] is True
    assert client.get(path, headers=alice.headers).json()["description"] is None

    again = client.request(method, path, json={"description": "New"}, headers=alice.headers)
    assert again.json()["description"] == "New"


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_update_with_every_field(client: Client, alice: Account, method: str) -> None:
    task = create_task(client, alice, title="Before", description="Before", completed=True)

    response = client.request(
        method,
        f"/api/tasks/{task['id']}",
        json={"title": "After", "description": "After", "completed": False},
        headers=alice.headers,
    )

    assert response.status_code == 200
    assert {k: response.json()[k] for k in ("title", "description", "completed")} == {
        "title": "After",
        "description": "After",
        "completed": False,
    }


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_an_empty_update_changes_nothing_but_updated_at(
    client: Client, alice: Account, method: str
) -> None:
    task = create_task(client, alice, title="Same", description="Same")

    response = client.request(method, f"/api/tasks/{task['id']}", json={}, headers=alice.headers)

    assert response.status_code == 200
    body = response.json()
    assert {k: v for k, v in body.items() if k != "updated_at"} == {
        k: v for k, v in task.items() if k != "updated_at"
    }
    assert parse_timestamp(body["updated_at"]) > parse_timestamp(task["updated_at"])


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_update_ignores_server_owned_and_unknown_fields(
    client: Client, alice: Account, bob: Account, method: str
) -> None:
    task = create_task(client, alice, title="Mine")
    path = f"/api/tasks/{task['id']}"

    response = client.request(
        method,
        path,
        json={
            "id": str(uuid.uuid4()),
            "user_id": bob.id,
            "created_at": "2000-01-01T00:00:00Z",
            "updated_at": "2000-01-01T00:00:00Z",
            "colour": "red",
        },
        headers=alice.headers,
    )

    assert response.status_code == 200
    body = assert_task(response.json())
    assert body["id"] == task["id"]
    assert body["user_id"] == alice.id
    assert body["created_at"] == task["created_at"]
    assert parse_timestamp(body["updated_at"]) > parse_timestamp(task["updated_at"])
    assert "colour" not in body
    assert client.get(path, headers=alice.headers).json() == body
    assert client.get("/api/tasks", headers=bob.headers).json()["total"] == 0


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"title": ""}, "title", id="empty-title"),
        pytest.param({"title": "   "}, "title", id="blank-title"),
        pytest.param({"title": "t" * 201}, "title", id="201-title"),
        pytest.param({"title": "a\x00b"}, "title", id="nul-title"),
        pytest.param({"title": None}, "title", id="null-title"),
        pytest.param({"title": 7}, "title", id="int-title"),
        pytest.param({"description": "d" * 10_001}, "description", id="10001"),
        pytest.param({"description": "\x00"}, "description", id="nul-description"),
        pytest.param({"completed": "true"}, "completed", id="completed-string"),
        pytest.param({"completed": 1}, "completed", id="completed-int"),
        pytest.param({"completed": None}, "completed", id="completed-null"),
        pytest.param({"completed": True, "title": ""}, "title", id="one-bad-of-two"),
    ],
)
def test_update_rejects_rule_breaking_json_with_422_and_changes_nothing(
    client: Client, alice: Account, method: str, body: dict[str, Any], field: str
) -> None:
    task = create_task(client, alice, title="Untouched", description="Untouched")
    path = f"/api/tasks/{task['id']}"

    response = client.request(method, path, json=body, headers=alice.headers)

    assert_problem(response, 422, "Validation failed")
    assert field in error_fields(response)
    assert client.get(path, headers=alice.headers).json() == task


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_update_accepts_a_200_character_title_with_surrounding_spaces(
    client: Client, alice: Account, method: str
) -> None:
    task = create_task(client, alice)

    response = client.request(
        method,
        f"/api/tasks/{task['id']}",
        json={"title": f"  {'t' * 200}  "},
        headers=alice.headers,
    )

    assert response.status_code == 200
    assert response.json()["title"] == "t" * 200


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_update_with_malformed_json_is_400(client: Client, alice: Account, method: str) -> None:
    task = create_task(client, alice)

    response = client.request(
        method,
        f"/api/tasks/{task['id']}",
        content=b'{"title": ',
        headers={**alice.headers, "content-type": "application/json"},
    )

    assert_problem(response, 400)


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_update_with_a_json_array_is_422(client: Client, alice: Account, method: str) -> None:
    task = create_task(client, alice)

    response = client.request(
        method, f"/api/tasks/{task['id']}", json=[{"title": "x"}], headers=alice.headers
    )

    assert_problem(response, 422, "Validation failed")


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_update_with_a_body_over_one_mebibyte_is_413(
    client: Client, alice: Account, method: str
) -> None:
    task = create_task(client, alice)
    body = b'{"description": "' + b"d" * (1024 * 1024) + b'"}'

    response = client.request(
        method,
        f"/api/tasks/{task['id']}",
        content=body,
        headers={**alice.headers, "content-type": "application/json"},
    )

    assert_problem(response, 413)


# --- delete ---------------------------------------------------------------------------------


def test_delete_answers_204_with_an_empty_body(client: Client, alice: Account) -> None:
    task = create_task(client, alice)
    kept = create_task(client, alice, title="Kept")
    path = f"/api/tasks/{task['id']}"

    response = client.delete(path, headers=alice.headers)

    assert response.status_code == 204
    assert response.content == b""
    assert_problem(client.get(path, headers=alice.headers), 404, "Task not found")
    assert_problem(client.delete(path, headers=alice.headers), 404, "Task not found")
    assert_problem(
        client.patch(path, json={"title": "x"}, headers=alice.headers), 404, "Task not found"
    )
    assert client.get("/api/tasks", headers=alice.headers).json()["tasks"] == [kept]


# --- a refused token, on every task route -----------------------------------------------------

TASK_ROUTES = [
    ("GET", "/api/tasks", None, {}),
    ("POST", "/api/tasks", {"title": "Written by a refused token"}, {}),
    ("POST", "/api/tasks", {"title": "Written by a refused token"}, {"Idempotency-Key": "k-1"}),
    ("GET", "/api/tasks/{id}", None, {}),
    ("PUT", "/api/tasks/{id}", {"title": "Changed by a refused token"}, {}),
    ("PATCH", "/api/tasks/{id}", {"completed": True}, {}),
    ("DELETE", "/api/tasks/{id}", None, {}),
]
NEW_PASSWORD = "a different horse battery staple"


def logged_out(client: Client, account: Account) -> str:
    assert client.post("/api/auth/logout", headers=account.headers).status_code == 200
    return log_in(client, account.email)


def logged_out_everywhere(client: Client, account: Account) -> str:
    assert client.post("/api/auth/logout-all", headers=account.headers).status_code == 200
    return log_in(client, account.email)


def password_changed(client: Client, account: Account) -> str:
    response = client.post(
        "/api/auth/password",
        json={"current_password": account.password, "new_password": NEW_PASSWORD},
        headers=account.headers,
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


@pytest.mark.parametrize(("method", "path", "body", "headers"), TASK_ROUTES)
@pytest.mark.parametrize("refusal", [logged_out, logged_out_everywhere, password_changed])
def test_a_revoked_token_is_refused_on_every_task_route_and_changes_nothing(
    client: Client,
    alice: Account,
    refusal: Callable[[Client, Account], str],
    method: str,
    path: str,
    body: dict[str, Any] | None,
    headers: dict[str, str],
) -> None:
    task = create_task(client, alice, title="Stored", description="as it was")
    fresh = bearer(refusal(client, alice))
    before = client.get("/api/tasks", headers=fresh).json()

    response = client.request(
        method, path.format(id=task["id"]), json=body, headers=alice.headers | headers
    )

    assert_problem(response, 401, "Token revoked")
    assert client.get("/api/tasks", headers=fresh).json() == before
    # The key was not claimed either: a valid token may use it for another task.
    again = client.post(
        "/api/tasks", json={"title": "Mine"}, headers=fresh | {"Idempotency-Key": "k-1"}
    )
    assert again.status_code == 201


@pytest.mark.parametrize(("method", "path", "body", "headers"), TASK_ROUTES)
def test_the_token_of_a_deleted_account_is_refused_on_every_task_route(
    client: Client,
    alice: Account,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    headers: dict[str, str],
) -> None:
    task = create_task(client, alice)
    deleted = client.request(
        "DELETE", "/api/auth/me", json={"password": alice.password}, headers=alice.headers
    )
    assert deleted.status_code == 204

    response = client.request(
        method, path.format(id=task["id"]), json=body, headers=alice.headers | headers
    )

    assert_problem(response, 401, "User not found")
    # Nothing was written under the deleted account's id.
    again = Account(client, alice.email)
    assert client.get("/api/tasks", headers=again.headers).json()["total"] == 0
