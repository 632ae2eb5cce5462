"""The API called by a page of another origin: CORS as a browser enforces it."""

from typing import Any

import httpx
from playwright.sync_api import Page

from tests.browser.support import WebServer, bearer, unique_email

# Runs in the other origin's page: a preflighted call (JSON body, Authorization header).
CREATE_TASK = """async ([api, token]) => {
  try {
    const response = await fetch(api + "/api/tasks", {
      method: "POST",
      headers: {"Content-Type": "application/json", "Authorization": "Bearer " + token},
      body: JSON.stringify({title: "From another origin"}),
    });
    return {
      status: response.status,
      title: (await response.json()).title,
      location: response.headers.get("Location"),
    };
  } catch (error) {
    return {error: String(error)};
  }
}"""


def call_from(page: Page, origin: str, web_server: WebServer, token: str) -> dict[str, Any]:
    page.goto(origin)
    result: dict[str, Any] = page.evaluate(CREATE_TASK, [web_server.base_url, token])
    return result


def tasks_of(web_server: WebServer, token: str) -> list[str]:
    response = httpx.get(f"{web_server.base_url}/api/tasks", headers=bearer(token), timeout=30)
    return [task["title"] for task in response.json()["tasks"]]


def test_an_origin_in_cors_origins_may_call_the_api(page: Page, web_server: WebServer) -> None:
    token = web_server.sign_up(unique_email("cors"))
    result = call_from(page, web_server.allowed_origin, web_server, token)
    assert result["status"] == 201, result
    assert result["title"] == "From another origin"
    # Exposed to the script (expose_headers), as a frontend needs it.
    assert result["location"].startswith("/api/tasks/")
    assert tasks_of(web_server, token) == ["From another origin"]


def test_another_origin_is_blocked_by_the_browser(page: Page, web_server: WebServer) -> None:
    token = web_server.sign_up(unique_email("cors-blocked"))
    result = call_from(page, web_server.other_origin, web_server, token)
    assert result == {"error": "TypeError: Failed to fetch"}
    # The preflight was refused, so the request itself was never sent.
    assert tasks_of(web_server, token) == []
