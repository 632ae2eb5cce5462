"""Helpers of the browser tests: Chromium's location, tiny static servers for other origins,
and the steps a person takes on the page."""

import os
import shutil
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from playwright.sync_api import Page, expect

from tests.faults.support import PASSWORD, bearer, sign_up

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WEAK_PASSWORD = "password"
# What the app asks for per page (PAGE_SIZE in entrypoints/web/static/store.js).
PAGE_SIZE = 20

__all__ = ["PASSWORD", "bearer", "sign_up"]


def chromium_path() -> str | None:
    """Debian's chromium (the project cannot download Playwright's own browsers), or the
    executable in CHROMIUM."""
    configured = os.environ.get("CHROMIUM")
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


def unique_email(who: str = "web") -> str:
    return f"{who}-{uuid.uuid4().hex[:12]}@example.com"


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


# --- another origin -----------------------------------------------------------------------------

_BLANK_PAGE = b"<!doctype html><html><head><title>elsewhere</title></head><body></body></html>"


class _BlankPage(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(_BLANK_PAGE)))
        self.end_headers()
        self.wfile.write(_BLANK_PAGE)

    def log_message(self, format: str, *args: object) -> None:
        pass  # the test output is not the place for another server's access log


@contextmanager
def other_origin() -> Iterator[str]:
    """A static server on a port of its own (another origin than the app's) serving a blank
    page from which the browser calls the API; yields its origin."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _BlankPage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --- the server ---------------------------------------------------------------------------------


@dataclass
class WebServer:
    base_url: str
    allowed_origin: str
    """In CORS_ORIGINS."""
    other_origin: str
    """Not in CORS_ORIGINS."""
    log: Path
    login_max_failures: int = 3

    def sign_up(self, email: str) -> str:
        """Registers and logs in through the API; returns the token."""
        return sign_up(self.base_url, email)

    def api(self, token: str) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers=bearer(token), timeout=30)

    def create_tasks(
        self, token: str, tasks: Sequence[str | dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Creates the tasks in order, each a title or the whole body; returns them."""
        created = []
        with self.api(token) as client:
            for task in tasks:
                body = {"title": task} if isinstance(task, str) else task
                response = client.post("/api/tasks", json=body)
                assert response.status_code == 201, response.text
                created.append(response.json())
        return created

    def tasks_of(self, token: str) -> dict[str, dict[str, Any]]:
        """The caller's tasks by title."""
        with self.api(token) as client:
            response = client.get("/api/tasks", params={"limit": 1000})
        assert response.status_code == 200, response.text
        return {task["title"]: task for task in response.json()["tasks"]}


# --- on the page --------------------------------------------------------------------------------


@dataclass
class Requests:
    """Every URL a page asked for."""

    urls: list[str] = field(default_factory=list)

    def origins(self) -> set[str]:
        return {origin_of(url) for url in self.urls}


def fill_credentials(page: Page, email: str, password: str = PASSWORD) -> None:
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)


def register(page: Page, email: str, password: str = PASSWORD) -> None:
    fill_credentials(page, email, password)
    page.get_by_role("button", name="Register").click()
    expect(page.get_by_role("status")).to_have_text("Account created. You can log in now.")


def log_in(page: Page, email: str, password: str = PASSWORD) -> None:
    fill_credentials(page, email, password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Add task")).to_be_visible()


def add_task(page: Page, title: str, description: str | None = None) -> None:
    page.get_by_label("Title").fill(title)
    if description is not None:
        page.get_by_label("Description").fill(description)
    page.get_by_role("button", name="Add task").click()
    # Shown at once; settled once the API has answered (the row is no longer busy).
    expect(task_item(page, title)).to_have_attribute("aria-busy", "false")


def edit_task(
    page: Page, title: str, *, new_title: str | None = None, description: str | None = None
) -> None:
    """Edit, change the fields given, Save; waits for the API's answer."""
    item = task_item(page, title)
    item.get_by_role("button", name="Edit").click()
    if new_title is not None:
        item.get_by_label("Title").fill(new_title)
    if description is not None:
        item.get_by_label("Description").fill(description)
    item.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Saved.")
    expect(task_item(page, new_title or title)).to_have_attribute("aria-busy", "false")


def tick(page: Page, title: str) -> None:
    """Ticks the task done and waits until the API has stored it: the tick shows at once
    (optimistically), before the server has answered."""
    with page.expect_response(
        lambda response: response.request.method == "PATCH" and "/api/tasks/" in response.url
    ) as answered:
        page.get_by_role("checkbox", name=title).check()
    assert answered.value.status == 200, answered.value.status


def task_item(page: Page, title: str):  # type: ignore[no-untyped-def]
    """The list item of the task with this title."""
    return page.get_by_role("listitem").filter(
        has=page.get_by_role("checkbox", name=title, exact=True)
    )


def total(page: Page):  # type: ignore[no-untyped-def]
    return page.locator("#total")


def titles_shown(page: Page) -> list[str]:
    return page.locator("#task-list .task-title").all_inner_texts()
