"""A person's whole visit, and the ways it can go wrong, in a real Chromium against the real
server."""

from playwright.sync_api import Page, expect

from tests.browser.conftest import Watched
from tests.browser.support import (
    PASSWORD,
    WebServer,
    add_task,
    log_in,
    register,
    task_item,
    tick,
    titles_shown,
    total,
    unique_email,
)


def test_a_person_registers_manages_tasks_and_finds_them_again(
    page: Page, watched: Watched, web_server: WebServer
) -> None:
    email = unique_email("journey")
    page.goto("/")
    register(page, email)
    log_in(page, email)
    expect(page.get_by_text(email)).to_be_visible()
    expect(total(page)).to_have_text("0 tasks")

    add_task(page, "Buy milk", "Two litres, semi-skimmed")
    add_task(page, "Write report")
    add_task(page, "Call mum")
    # Newest first.
    assert titles_shown(page) == ["Call mum", "Write report", "Buy milk"]
    expect(total(page)).to_have_text("3 tasks")
    expect(task_item(page, "Buy milk")).to_contain_text("Two litres, semi-skimmed")

    tick(page, "Write report")
    expect(task_item(page, "Write report")).to_have_class("task done")

    page.get_by_role("radio", name="Done").check()
    expect(total(page)).to_have_text("1 tasks")
    assert titles_shown(page) == ["Write report"]
    page.get_by_role("radio", name="Open").check()
    expect(total(page)).to_have_text("2 tasks")
    assert titles_shown(page) == ["Call mum", "Buy milk"]
    page.get_by_role("radio", name="All").check()
    expect(total(page)).to_have_text("3 tasks")

    milk = task_item(page, "Buy milk")
    milk.get_by_role("button", name="Edit").click()
    milk.get_by_label("Title").fill("Buy oat milk")
    milk.get_by_label("Description").fill("One carton")
    milk.get_by_role("button", name="Save").click()
    edited = task_item(page, "Buy oat milk")
    expect(edited).to_contain_text("One carton")
    expect(edited).to_have_attribute("aria-busy", "false")
    expect(page.get_by_role("status")).to_have_text("Saved.")

    task_item(page, "Call mum").get_by_role("button", name="Delete").click()
    expect(page.get_by_role("checkbox", name="Call mum")).to_have_count(0)
    expect(total(page)).to_have_text("2 tasks")
    expect(page.get_by_role("status")).to_have_text("Deleted “Call mum”.")

    # A reload keeps the session (sessionStorage) and shows what the server has.
    page.reload()
    expect(total(page)).to_have_text("2 tasks")
    assert titles_shown(page) == ["Write report", "Buy oat milk"]
    expect(page.get_by_role("checkbox", name="Write report")).to_be_checked()
    expect(task_item(page, "Buy oat milk")).to_contain_text("One carton")

    page.get_by_role("button", name="Log out", exact=True).click()
    expect(page.get_by_label("Email")).to_be_visible()
    expect(page.get_by_role("status")).to_have_text("You have logged out.")
    assert page.evaluate("sessionStorage.length") == 0
    page.reload()
    expect(page.get_by_role("button", name="Log in")).to_be_visible()

    log_in(page, email)
    expect(total(page)).to_have_text("2 tasks")
    assert titles_shown(page) == ["Write report", "Buy oat milk"]
    watched.assert_clean()


def test_a_title_full_of_markup_is_shown_as_text(
    page: Page, watched: Watched, web_server: WebServer
) -> None:
    email = unique_email("markup")
    token = web_server.sign_up(email)
    markup = "<img src=x onerror=alert(1)>"
    web_server.create_tasks(token, [markup])
    page.goto("/")
    log_in(page, email)
    add_task(page, "<script>alert(2)</script><b>bold</b>", "<i>not italic</i>")

    expect(page.get_by_role("checkbox", name=markup, exact=True)).to_be_visible()
    assert titles_shown(page) == ["<script>alert(2)</script><b>bold</b>", markup]
    expect(page.get_by_text("<i>not italic</i>")).to_be_visible()
    list_ = page.locator("#task-list")
    expect(list_.locator("img, script, b, i")).to_have_count(0)
    page.reload()
    expect(page.get_by_role("checkbox", name=markup, exact=True)).to_be_visible()
    expect(list_.locator("img, script, b, i")).to_have_count(0)
    watched.assert_clean()


def test_field_errors_are_shown_next_to_their_fields(page: Page, web_server: WebServer) -> None:
    page.goto("/")
    page.get_by_label("Email").fill("not-an-email")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Register").click()
    email_error = page.locator("#email-error")
    expect(email_error).to_have_role("alert")
    expect(email_error).to_contain_text("@")
    expect(page.get_by_role("alert")).to_have_count(1)
    expect(page.get_by_label("Email")).to_have_attribute("aria-invalid", "true")

    page.get_by_label("Email").fill(unique_email("weak"))
    page.get_by_label("Password").fill("password")
    page.get_by_role("button", name="Register").click()
    expect(page.get_by_role("alert")).to_have_count(1)
    expect(page.locator("#password-error")).to_contain_text("Password is too weak")
    expect(page.get_by_label("Email")).not_to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Password")).to_be_focused()

    # Already registered: a 409, about the email.
    email = unique_email("taken")
    web_server.sign_up(email)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Register").click()
    expect(page.get_by_role("alert")).to_have_text("Email already registered")
    expect(email_error).to_have_text("Email already registered")

    # Wrong password: a 401 for the form as a whole (it does not say which field is wrong).
    page.get_by_label("Password").fill("not the password at all")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_have_text("Invalid email or password.")
    expect(page.locator("#auth-error")).to_have_text("Invalid email or password.")

    # A task's title: blank is refused by the API, and the title field says so.
    log_in(page, email)
    page.get_by_label("Title").fill("   ")
    page.get_by_role("button", name="Add task").click()
    expect(page.locator("#title-error")).to_have_role("alert")
    expect(page.locator("#title-error")).not_to_be_empty()
    expect(total(page)).to_have_text("0 tasks")
    expect(page.get_by_role("listitem")).to_have_count(0)


def test_a_locked_out_email_is_told_how_long_to_wait(page: Page, web_server: WebServer) -> None:
    email = unique_email("locked")
    web_server.sign_up(email)
    page.goto("/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("wrong password, again and again")
    for _ in range(web_server.login_max_failures):
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("alert")).to_have_text("Invalid email or password.")
        page.locator("#auth-error").evaluate("element => element.textContent = ''")
    page.get_by_role("button", name="Log in").click()
    # 429 with Retry-After (the rest of LOGIN_LOCKOUT_MINUTES, 15 by default).
    expect(page.get_by_role("alert")).to_contain_text("Try again in 15 minutes.")


def test_an_edit_the_api_refuses_reopens_the_editor_with_the_reason(
    page: Page, watched: Watched, web_server: WebServer
) -> None:
    email = unique_email("bad-edit")
    web_server.create_tasks(web_server.sign_up(email), ["Stays as it was"])
    page.goto("/")
    log_in(page, email)
    item = task_item(page, "Stays as it was")
    item.get_by_role("button", name="Edit").click()
    item.get_by_label("Title").fill("x" * 201)
    item.get_by_label("Description").fill("Kept while fixing the title")
    item.get_by_role("button", name="Save").click()

    expect(item.get_by_role("alert")).to_have_text("Title must be at most 200 characters")
    expect(item.get_by_label("Title")).to_have_value("x" * 201)
    expect(item.get_by_label("Title")).to_have_attribute("aria-invalid", "true")
    expect(item.get_by_label("Description")).to_have_value("Kept while fixing the title")
    item.get_by_role("button", name="Cancel").click()
    expect(item.get_by_label("Title")).to_have_count(0)
    assert titles_shown(page) == ["Stays as it was"]
    expect(item.get_by_role("button", name="Edit")).to_be_focused()
    watched.assert_clean()
