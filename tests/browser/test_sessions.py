"""Paging, and what the page does when the world changes under it: a task changed in another
tab (412), a session ended from another device (401)."""

from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import DESKTOP, Watched
from tests.browser.support import (
    PAGE_SIZE,
    WebServer,
    edit_task,
    log_in,
    task_item,
    tick,
    titles_shown,
    total,
    unique_email,
)


def test_load_more_pages_through_every_task(
    page: Page, watched: Watched, web_server: WebServer
) -> None:
    email = unique_email("paging")
    token = web_server.sign_up(email)
    count = PAGE_SIZE + 5
    titles = [f"Task {number:02d}" for number in range(1, count + 1)]
    web_server.create_tasks(token, titles)
    page.goto("/")
    log_in(page, email)
    newest_first = list(reversed(titles))

    expect(total(page)).to_have_text(f"{count} tasks")
    expect(page.get_by_role("listitem")).to_have_count(PAGE_SIZE)
    assert titles_shown(page) == newest_first[:PAGE_SIZE]
    page.get_by_role("button", name="Load more").click()
    expect(page.get_by_role("listitem")).to_have_count(count)
    assert titles_shown(page) == newest_first
    expect(page.get_by_role("button", name="Load more")).to_be_hidden()
    # The keyboard focus moves on to the first task loaded.
    expect(page.get_by_role("checkbox", name=newest_first[PAGE_SIZE])).to_be_focused()

    # The filter pages too, and only asks for what it shows.
    tick(page, "Task 01")
    expect(task_item(page, "Task 01")).to_have_attribute("class", "task done")
    page.get_by_role("radio", name="Open").check()
    expect(total(page)).to_have_text(f"{count - 1} tasks")
    expect(page.get_by_role("listitem")).to_have_count(PAGE_SIZE)
    page.get_by_role("button", name="Load more").click()
    expect(page.get_by_role("listitem")).to_have_count(count - 1)
    expect(page.get_by_role("checkbox", name="Task 01")).to_have_count(0)
    paged = [url for url in watched.requests.urls if "cursor=" in url]
    assert len(paged) == 2, paged
    assert all(f"limit={PAGE_SIZE}" in url for url in paged)
    watched.assert_clean()


def test_a_task_changed_in_another_tab_is_reloaded_and_the_person_told(
    browser: Browser, web_server: WebServer
) -> None:
    email = unique_email("two-tabs")
    token = web_server.sign_up(email)
    web_server.create_tasks(token, ["Plan the trip"])
    first = browser.new_context(base_url=web_server.base_url, viewport=DESKTOP)
    second = browser.new_context(base_url=web_server.base_url, viewport=DESKTOP)
    try:
        here, there = first.new_page(), second.new_page()
        for page in (here, there):
            page.goto("/")
            log_in(page, email)
            expect(page.get_by_role("checkbox", name="Plan the trip")).to_be_visible()

        edit_task(there, "Plan the trip", new_title="Plan the trip to Lisbon")

        # This tab still has the old version: the API refuses (412), the page reloads the task.
        # (A click, not check(): the refusal may untick it before check() could look.)
        here.get_by_role("checkbox", name="Plan the trip").click()
        alert = here.get_by_role("alert")
        expect(alert).to_contain_text("was changed in another tab or on another device")
        expect(alert).to_contain_text("reloaded")
        fresh = here.get_by_role("checkbox", name="Plan the trip to Lisbon")
        expect(fresh).to_be_visible()
        expect(fresh).not_to_be_checked()
        assert titles_shown(here) == ["Plan the trip to Lisbon"]

        # Now it has the current version, so the same change goes through.
        tick(here, "Plan the trip to Lisbon")
        expect(task_item(here, "Plan the trip to Lisbon")).to_have_class("task done")
        there.reload()
        expect(there.get_by_role("checkbox", name="Plan the trip to Lisbon")).to_be_checked()

        # A delete from a stale tab: refused (412) and the task back in the list, reloaded.
        edit_task(there, "Plan the trip to Lisbon", description="Flights first")
        task_item(here, "Plan the trip to Lisbon").get_by_role("button", name="Delete").click()
        expect(here.get_by_role("alert")).to_contain_text("reloaded")
        expect(task_item(here, "Plan the trip to Lisbon")).to_contain_text("Flights first")
        expect(total(here)).to_have_text("1 tasks")
    finally:
        first.close()
        second.close()


def test_a_session_ended_elsewhere_returns_to_the_login_form_with_the_reason(
    browser: Browser, web_server: WebServer
) -> None:
    email = unique_email("everywhere")
    first = browser.new_context(base_url=web_server.base_url, viewport=DESKTOP)
    second = browser.new_context(base_url=web_server.base_url, viewport=DESKTOP)
    try:
        web_server.sign_up(email)
        here, there = first.new_page(), second.new_page()
        here.goto("/")
        log_in(here, email)
        there.goto("/")
        log_in(there, email)

        there.get_by_role("button", name="Log out everywhere").click()
        expect(there.get_by_role("status")).to_have_text("You have logged out on every device.")
        expect(there.get_by_label("Email")).to_be_visible()

        here.get_by_label("Title").fill("Written after the logout")
        here.get_by_role("button", name="Add task").click()
        expect(here.get_by_label("Email")).to_be_visible()
        expect(here.get_by_role("alert")).to_have_text(
            "You have been logged out: Token revoked. Please log in again."
        )
        expect(here.get_by_role("checkbox", name="Written after the logout")).to_have_count(0)
        assert here.evaluate("sessionStorage.length") == 0

        log_in(here, email)
        expect(total(here)).to_have_text("0 tasks")
    finally:
        first.close()
        second.close()


def test_a_failed_change_is_undone_and_the_reason_shown(
    page: Page, watched: Watched, web_server: WebServer
) -> None:
    email = unique_email("offline")
    token = web_server.sign_up(email)
    web_server.create_tasks(token, ["Keep me", "Tick me"])
    page.goto("/")
    log_in(page, email)

    def unreachable(route) -> None:  # type: ignore[no-untyped-def]
        if route.request.method in {"PATCH", "DELETE"}:
            route.abort("connectionrefused")
        else:
            route.fallback()

    page.route("**/api/tasks/*", unreachable)
    page.get_by_role("checkbox", name="Tick me").click()
    alert = page.get_by_role("alert")
    expect(alert).to_have_text(
        "“Tick me” could not be changed: The server cannot be reached;"
        " check the connection and try again."
    )
    expect(page.get_by_role("checkbox", name="Tick me")).not_to_be_checked()

    task_item(page, "Keep me").get_by_role("button", name="Delete").click()
    expect(alert).to_contain_text("“Keep me” could not be deleted: The server cannot be reached")
    assert titles_shown(page) == ["Tick me", "Keep me"]
    expect(total(page)).to_have_text("2 tasks")

    page.unroute("**/api/tasks/*")
    page.reload()
    expect(total(page)).to_have_text("2 tasks")
    assert titles_shown(page) == ["Tick me", "Keep me"]
    expect(page.get_by_role("checkbox", name="Tick me")).not_to_be_checked()
    watched.assert_clean()


def test_quick_changes_to_one_task_are_not_taken_for_another_tabs(
    page: Page, watched: Watched, web_server: WebServer
) -> None:
    email = unique_email("quick")
    web_server.create_tasks(web_server.sign_up(email), ["Click me twice", "Tick then delete"])
    page.goto("/")
    log_in(page, email)
    checkbox = page.get_by_role("checkbox", name="Click me twice")
    checkbox.dblclick()
    expect(task_item(page, "Click me twice")).to_have_attribute("aria-busy", "false")
    page.get_by_role("checkbox", name="Tick then delete").click()
    task_item(page, "Tick then delete").get_by_role("button", name="Delete").click()
    expect(page.get_by_role("status")).to_have_text("Deleted “Tick then delete”.")
    expect(page.get_by_role("alert")).to_have_count(0)
    expect(checkbox).not_to_be_checked()

    page.reload()
    expect(total(page)).to_have_text("1 tasks")
    expect(page.get_by_role("checkbox", name="Click me twice")).not_to_be_checked()
    watched.assert_clean()
