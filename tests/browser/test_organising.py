"""Organising tasks on the page: priority, dues in words and in their own time zones, tags and
their filter, search as you type, the sorts, paging that keeps them, the person's time zone
from the browser's; on a phone, in both colour schemes, and with the keyboard alone."""

import itertools
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

from playwright.sync_api import Browser, BrowserContext, Locator, Page, Request, expect

from tests.browser.conftest import DESKTOP, Watched
from tests.browser.support import (
    PAGE_SIZE,
    WebServer,
    add_task,
    log_in,
    task_item,
    tick,
    total,
    unique_email,
)

PHONE = {"width": 360, "height": 740}
# A day and an hour apart: whatever the time, their dates differ, so a due's words read in
# the browser's zone instead of the due's own come out wrong.
FAR_EAST = "Pacific/Kiritimati"  # UTC+14
FAR_WEST = "Pacific/Pago_Pago"  # UTC-11
SORTS = ["Newest", "Oldest", "Due date", "Priority", "Title"]
ORGANISING_FIELDS = ["Title", "Description", "Priority", "Due date", "Due time", "Tags"]


def today_in(zone: str) -> date:
    return datetime.now(ZoneInfo(zone)).date()


def zone_of(page: Page) -> str:
    zone: str = page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone")
    return zone


@contextmanager
def context_of(browser: Browser, web_server: WebServer, **options: Any) -> Iterator[Page]:
    made: BrowserContext = browser.new_context(
        base_url=web_server.base_url, **{"viewport": DESKTOP, **options}
    )
    made.set_default_timeout(10_000)
    try:
        yield made.new_page()
    finally:
        made.close()


def list_titles(page: Page) -> Locator:
    return page.locator("#task-list .task-title")


def queries(requests: list[str], name: str) -> list[dict[str, list[str]]]:
    """The query strings of the list's requests that carry `name`."""
    found = []
    for url in requests:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        if parts.path == "/api/tasks" and name in query:
            found.append(query)
    return found


def tab_to(page: Page, target: Locator, most: int = 40) -> None:
    """Presses Tab until the target has the focus (a date or time input takes a few)."""
    for _ in range(most):
        if target.evaluate("element => element === document.activeElement"):
            return
        page.keyboard.press("Tab")
    expect(target).to_be_focused()


def test_a_task_gets_a_priority_a_due_and_tags_and_an_edit_clears_them(
    page: Page, watched: Watched, web_server: WebServer
) -> None:
    email = unique_email("organise")
    token = web_server.sign_up(email)
    page.goto("/")
    log_in(page, email)
    form = page.locator("#add-form")
    for name in ORGANISING_FIELDS:
        expect(form.get_by_label(name, exact=True)).to_be_visible()
    priority = form.get_by_label("Priority")
    expect(priority.locator("option")).to_have_text(["None", "Low", "Medium", "High"])
    expect(priority).to_have_value("none")
    expect(form.get_by_label("Due date")).to_have_attribute("type", "date")
    expect(form.get_by_label("Due time")).to_have_attribute("type", "time")

    zone = zone_of(page)
    tomorrow = (today_in(zone) + timedelta(days=1)).isoformat()
    form.get_by_label("Title").fill("Plan the trip")
    priority.select_option(label="High")
    form.get_by_label("Due date").fill(tomorrow)
    form.get_by_label("Due time").fill("09:30")
    form.get_by_label("Tags").fill("work, home ,, ")
    form.get_by_role("button", name="Add task").click()
    item = task_item(page, "Plan the trip")
    expect(item).to_have_attribute("aria-busy", "false")
    expect(item).to_contain_text("High priority")
    expect(item).to_contain_text("Due Tomorrow 09:30")
    expect(item.get_by_role("button", name="#work", exact=True)).to_be_visible()
    expect(item.get_by_role("button", name="#home", exact=True)).to_be_visible()
    expect(item).not_to_contain_text("Overdue")
    # The add form is empty again, priority and all.
    expect(priority).to_have_value("none")
    expect(form.get_by_label("Tags")).to_have_value("")
    stored = web_server.tasks_of(token)["Plan the trip"]
    assert stored["priority"] == "high"
    assert stored["due"]["date"] == tomorrow
    assert stored["due"]["time"] == "09:30:00"
    assert stored["due"]["timezone"] == zone
    assert stored["tags"] == ["home", "work"]

    item.get_by_role("button", name="Edit").click()
    editor = item.locator("form")
    for name in ORGANISING_FIELDS:
        expect(editor.get_by_label(name, exact=True)).to_be_visible()
    expect(editor.get_by_label("Priority")).to_have_value("high")
    expect(editor.get_by_label("Priority").locator("option")).to_have_text(
        ["None", "Low", "Medium", "High"]
    )
    expect(editor.get_by_label("Due date")).to_have_value(tomorrow)
    expect(editor.get_by_label("Due time")).to_have_value("09:30")
    expect(editor.get_by_label("Tags")).to_have_value("home, work")
    editor.get_by_label("Priority").select_option(label="Low")
    editor.get_by_label("Due date").fill("")
    editor.get_by_label("Tags").fill("")
    editor.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Saved.")
    expect(item).to_have_attribute("aria-busy", "false")
    expect(item).to_contain_text("Low priority")
    expect(item).not_to_contain_text("Due")
    expect(item.get_by_role("button", name="#work")).to_have_count(0)
    stored = web_server.tasks_of(token)["Plan the trip"]
    assert (stored["priority"], stored["due"], stored["tags"]) == ("low", None, [])

    # An all-day due, then back to no priority: the text goes with it.
    item.get_by_role("button", name="Edit").click()
    expect(editor.get_by_label("Due date")).to_have_value("")
    expect(editor.get_by_label("Tags")).to_have_value("")
    editor.get_by_label("Priority").select_option(label="None")
    editor.get_by_label("Due date").fill(today_in(zone).isoformat())
    editor.get_by_label("Tags").fill("errands")
    editor.get_by_role("button", name="Save").click()
    expect(item).to_have_attribute("aria-busy", "false")
    expect(item).to_contain_text("Due Today")
    expect(item).not_to_contain_text("priority")
    expect(item.get_by_role("button", name="#errands")).to_be_visible()
    stored = web_server.tasks_of(token)["Plan the trip"]
    assert stored["due"] == {
        "date": today_in(zone).isoformat(),
        "time": None,
        "timezone": zone,
        "at": None,
    }
    watched.assert_clean()


def test_dues_read_in_their_own_time_zone_and_overdue_only_while_open(
    browser: Browser, web_server: WebServer
) -> None:
    email = unique_email("dues")
    token = web_server.sign_up(email)
    east, west = today_in(FAR_EAST), today_in(FAR_WEST)
    day = timedelta(days=1)
    web_server.create_tasks(
        token,
        [
            {"title": "Today out east", "due": {"date": str(east), "timezone": FAR_EAST}},
            {"title": "Yesterday out east", "due": {"date": str(east - day), "timezone": FAR_EAST}},
            {
                "title": "Done yesterday",
                "completed": True,
                "due": {"date": str(east - day), "timezone": FAR_EAST},
            },
            # Its date is today out east, but its time has passed there.
            {
                "title": "Timed, passed today",
                "due": {"date": str(east), "time": "00:00", "timezone": FAR_EAST},
            },
            {
                "title": "Timed, yesterday here",
                "due": {"date": str(west - day), "time": "23:59", "timezone": FAR_WEST},
            },
            {
                "title": "Timed, tomorrow here",
                "due": {"date": str(west + day), "time": "08:15", "timezone": FAR_WEST},
            },
            {"title": "Far ahead", "due": {"date": "2031-03-14", "timezone": FAR_WEST}},
        ],
    )
    with context_of(browser, web_server, timezone_id=FAR_WEST, locale="en-US") as page:
        page.goto("/")
        log_in(page, email)
        expect(total(page)).to_have_text("7 tasks")
        expected = {
            "Today out east": f"Due Today ({FAR_EAST})",
            "Yesterday out east": f"Due Yesterday ({FAR_EAST})",
            "Done yesterday": f"Due Yesterday ({FAR_EAST})",
            "Timed, passed today": f"Due Today 00:00 ({FAR_EAST})",
            "Timed, yesterday here": "Due Yesterday 23:59",
            "Timed, tomorrow here": "Due Tomorrow 08:15",
            "Far ahead": "Due Fri, Mar 14, 2031",
        }
        overdue = {"Yesterday out east", "Timed, passed today", "Timed, yesterday here"}
        for title, words in expected.items():
            item = task_item(page, title)
            expect(item).to_contain_text(words)
            if title in overdue:
                expect(item.get_by_text("Overdue", exact=True)).to_be_visible()
            else:
                expect(item).not_to_contain_text("Overdue")

        # Done, it is no longer overdue; open again, it is.
        tick(page, "Yesterday out east")
        expect(task_item(page, "Yesterday out east")).not_to_contain_text("Overdue")
        expect(task_item(page, "Yesterday out east")).to_contain_text("Due Yesterday")
        with page.expect_response(lambda response: response.request.method == "PATCH"):
            page.get_by_role("checkbox", name="Done yesterday").uncheck()
        expect(task_item(page, "Done yesterday").get_by_text("Overdue")).to_be_visible()


def test_a_tag_button_filters_through_the_api_and_clear_tag_filter_ends_it(
    page: Page, watched: Watched, web_server: WebServer
) -> None:
    email = unique_email("tags")
    token = web_server.sign_up(email)
    web_server.create_tasks(
        token,
        [
            {"title": "Write the report", "tags": ["work"]},
            {"title": "Buy groceries", "tags": ["home"]},
            {"title": "Fix the office door", "tags": ["work", "home"]},
            "Untagged",
        ],
    )
    page.goto("/")
    log_in(page, email)
    expect(total(page)).to_have_text("4 tasks")
    clear = page.get_by_role("button", name="Clear tag filter")
    expect(clear).to_be_hidden()
    # Added elsewhere after the list was loaded: only the API can know it is tagged.
    web_server.create_tasks(token, [{"title": "Added elsewhere", "tags": ["Work"]}])

    with page.expect_response(lambda response: "tag=work" in response.url):
        task_item(page, "Write the report").get_by_role("button", name="#work").click()
    expect(list_titles(page)).to_have_text(
        ["Added elsewhere", "Fix the office door", "Write the report"]
    )
    expect(total(page)).to_have_text("3 tasks")
    expect(clear).to_be_focused()
    expect(page.get_by_text("Tagged #work")).to_be_visible()

    # Another tag's button replaces the filter.
    task_item(page, "Fix the office door").get_by_role("button", name="#home").click()
    expect(list_titles(page)).to_have_text(["Fix the office door", "Buy groceries"])
    assert queries(watched.requests.urls, "tag")[-1]["tag"] == ["home"]

    clear.click()
    expect(total(page)).to_have_text("5 tasks")
    expect(clear).to_be_hidden()
    expect(page.get_by_role("searchbox", name="Search tasks")).to_be_focused()
    watched.assert_clean()


def test_the_search_filters_as_the_person_types_one_request_per_pause(
    page: Page, watched: Watched, web_server: WebServer
) -> None:
    email = unique_email("search")
    token = web_server.sign_up(email)
    web_server.create_tasks(
        token,
        [
            "Buy oat milk",
            {"title": "Breakfast", "description": "Oats, then milk"},
            "Call mum",
            "old shoes",
            "older sibling",
        ],
    )
    # The answer to the search for "old" comes late, after the one for "older".
    page.add_init_script(
        """(() => {
          const fetch = window.fetch;
          window.fetch = async (...args) => {
            const answer = await fetch(...args);
            if (/[?&]q=old(&|$)/.test(String(args[0]))) {
              await new Promise((resolve) => setTimeout(resolve, 800));
              window.staleAnswered = true;
            }
            return answer;
          };
        })()"""
    )
    page.goto("/")
    log_in(page, email)
    expect(total(page)).to_have_text("5 tasks")
    search = page.get_by_role("searchbox", name="Search tasks")
    sent: list[tuple[float, str]] = []

    def searched(request: Request) -> None:
        if "q=" in request.url:
            sent.append((time.monotonic(), request.url))

    page.on("request", searched)

    # Quick typing, a key every 40 ms: each pause shorter than the debounce's.
    search.press_sequentially("oat milk", delay=40)
    typed = time.monotonic()
    expect(list_titles(page)).to_have_text(["Breakfast", "Buy oat milk"], timeout=1_000)
    assert time.monotonic() - typed < 1
    asked = queries([url for _, url in sent], "q")
    assert asked[-1]["q"] == ["oat milk"]
    # Debounced: a request only once the typing paused 150 ms, never one per key.
    assert len(asked) <= 2, asked
    assert all(later - earlier >= 0.1 for (earlier, _), (later, _) in itertools.pairwise(sent))
    expect(total(page)).to_have_text("2 tasks")

    search.fill("")
    expect(total(page)).to_have_text("5 tasks")
    search.fill("nothing like it")
    expect(page.get_by_text("No tasks match.")).to_be_visible()

    # A stale answer arriving after a newer one never replaces it.
    with page.expect_request(lambda request: "q=old&" in request.url):
        search.fill("old")
    search.press_sequentially("er")
    expect(list_titles(page)).to_have_text(["older sibling"])
    page.wait_for_function("() => window.staleAnswered === true")
    page.wait_for_timeout(300)
    expect(list_titles(page)).to_have_text(["older sibling"])
    expect(total(page)).to_have_text("1 tasks")
    watched.assert_clean()


def test_each_sort_orders_the_list_through_the_api(
    page: Page, watched: Watched, web_server: WebServer
) -> None:
    email = unique_email("sorts")
    token = web_server.sign_up(email)
    web_server.create_tasks(
        token,
        [
            {"title": "Cherry", "priority": "high", "due": {"date": "2030-01-03"}},
            {"title": "apple", "priority": "low"},
            {"title": "Banana", "priority": "medium", "due": {"date": "2030-01-01"}},
        ],
    )
    page.goto("/")
    log_in(page, email)
    sort = page.get_by_label("Sort by")
    expect(sort.locator("option")).to_have_text(SORTS)
    expect(sort).to_have_value("-created_at")
    orders = {
        "Oldest": ("created_at", ["Cherry", "apple", "Banana"]),
        "Due date": ("due", ["Banana", "Cherry", "apple"]),
        "Priority": ("-priority", ["Cherry", "Banana", "apple"]),
        "Title": ("title", ["apple", "Banana", "Cherry"]),
        "Newest": ("-created_at", ["Banana", "apple", "Cherry"]),
    }
    for label, (value, titles) in orders.items():
        sort.select_option(label=label)
        expect(sort).to_have_value(value)
        expect(list_titles(page)).to_have_text(titles)
    sorted_by = [query.get("sort") for query in queries(watched.requests.urls, "limit")]
    assert sorted_by[-5:] == [["created_at"], ["due"], ["-priority"], ["title"], None]

    # A task added under a sort goes where the sort puts it.
    sort.select_option(label="Title")
    expect(list_titles(page)).to_have_text(["apple", "Banana", "Cherry"])
    add_task(page, "Avocado")
    expect(list_titles(page)).to_have_text(["apple", "Avocado", "Banana", "Cherry"])
    watched.assert_clean()


def test_load_more_keeps_the_sort_the_tag_and_the_search(
    page: Page, watched: Watched, web_server: WebServer
) -> None:
    email = unique_email("paging-query")
    token = web_server.sign_up(email)
    count = PAGE_SIZE + 5
    numbers = sorted(range(1, count + 1), key=lambda number: (number * 7) % count)
    web_server.create_tasks(
        token,
        [{"title": f"Bulk {number:02d}", "tags": ["bulk"]} for number in numbers]
        + [{"title": "Bulk, untagged"}, {"title": "Tagged, not found", "tags": ["bulk"]}],
    )
    page.goto("/")
    log_in(page, email)
    expect(total(page)).to_have_text(f"{count + 2} tasks")
    page.get_by_role("button", name="#bulk").first.click()
    expect(total(page)).to_have_text(f"{count + 1} tasks")
    page.get_by_role("searchbox", name="Search tasks").fill("bulk")
    expect(total(page)).to_have_text(f"{count} tasks")
    page.get_by_label("Sort by").select_option(label="Title")
    in_order = [f"Bulk {number:02d}" for number in range(1, count + 1)]
    expect(list_titles(page)).to_have_text(in_order[:PAGE_SIZE])

    page.get_by_role("button", name="Load more").click()
    expect(list_titles(page)).to_have_text(in_order)
    expect(page.get_by_role("button", name="Load more")).to_be_hidden()
    expect(page.get_by_role("alert")).to_have_count(0)
    (paged,) = queries(watched.requests.urls, "cursor")
    assert (paged["sort"], paged["tag"], paged["q"]) == (["title"], ["bulk"], ["bulk"])
    watched.assert_clean()


def test_the_page_gives_the_person_the_browsers_time_zone(
    browser: Browser, web_server: WebServer
) -> None:
    email = unique_email("zone")
    token = web_server.sign_up(email)

    def users_zone() -> str:
        with web_server.api(token) as client:
            zone: str = client.get("/api/auth/me").json()["timezone"]
            return zone

    assert users_zone() == "UTC"
    with context_of(browser, web_server, timezone_id="Asia/Tokyo") as page:
        zone_changes: list[Request] = []

        def changing_zone(request: Request) -> None:
            if request.method == "PATCH" and request.url.endswith("/api/auth/me"):
                zone_changes.append(request)

        page.on("request", changing_zone)
        page.goto("/")
        log_in(page, email)
        assert users_zone() == "Asia/Tokyo"
        assert [request.post_data_json for request in zone_changes] == [{"timezone": "Asia/Tokyo"}]

        # A due written on the page, without a zone, is the person's: now Tokyo's.
        page.get_by_label("Title").fill("Catch the Shinkansen")
        page.get_by_label("Due date").fill("2030-04-01")
        page.get_by_label("Due time").fill("07:10")
        page.get_by_role("button", name="Add task").click()
        expect(task_item(page, "Catch the Shinkansen")).to_have_attribute("aria-busy", "false")
        due = web_server.tasks_of(token)["Catch the Shinkansen"]["due"]
        assert due == {
            "date": "2030-04-01",
            "time": "07:10:00",
            "timezone": "Asia/Tokyo",
            "at": "2030-03-31T22:10:00Z",
        }

        # On each load: the same zone is left alone, another is set again.
        page.reload()
        expect(total(page)).to_have_text("1 tasks")
        assert len(zone_changes) == 1
        with web_server.api(token) as client:
            client.patch("/api/auth/me", json={"timezone": "Europe/Lisbon"}).raise_for_status()
        page.reload()
        expect(total(page)).to_have_text("1 tasks")
        assert len(zone_changes) == 2
        assert users_zone() == "Asia/Tokyo"


# The WCAG contrast ratio of an element's text against the first opaque background under it.
CONTRAST = """element => {
  const channels = (color) => color.match(/[\\d.]+/g).map(Number);
  const luminance = (color) => {
    const [r, g, b] = channels(color).slice(0, 3).map((value) => {
      const c = value / 255;
      return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  let under = element;
  let background = "rgb(255, 255, 255)";
  while (under) {
    const color = getComputedStyle(under).backgroundColor;
    const alpha = channels(color)[3];
    if (alpha === undefined || alpha > 0) {
      background = color;
      break;
    }
    under = under.parentElement;
  }
  const [light, dark] = [luminance(getComputedStyle(element).color), luminance(background)]
    .sort((a, b) => b - a);
  return (light + 0.05) / (dark + 0.05);
}"""


def fits(page: Page, element: Locator) -> None:
    expect(element).to_be_visible()
    box = element.bounding_box()
    assert box is not None
    assert box["x"] >= 0
    assert box["x"] + box["width"] <= PHONE["width"], element


def test_organising_fits_a_phone_in_both_colour_schemes_with_readable_words(
    browser: Browser, web_server: WebServer
) -> None:
    email = unique_email("phone")
    token = web_server.sign_up(email)
    long_tag = "a-tag-of-forty-characters-that-goes-on-x"
    web_server.create_tasks(
        token,
        [
            {
                "title": "Renew the passport before the summer holidays begin",
                "priority": "high",
                "due": {"date": "2020-02-02", "time": "10:00", "timezone": FAR_EAST},
                "tags": ["work", long_tag, "papers"],
            }
        ],
    )
    for scheme in ("light", "dark"):
        with context_of(
            browser, web_server, viewport=PHONE, color_scheme=scheme, locale="en-US"
        ) as page:
            page.goto("/")
            log_in(page, email)
            item = task_item(page, "Renew the passport before the summer holidays begin")
            expect(item).to_contain_text("Overdue")
            form = page.locator("#add-form")
            for name in ORGANISING_FIELDS:
                fits(page, form.get_by_label(name, exact=True))
            fits(page, page.get_by_role("searchbox", name="Search tasks"))
            fits(page, page.get_by_label("Sort by"))
            for tag in ("#work", f"#{long_tag}"):
                fits(page, item.get_by_role("button", name=tag))
            words = [
                item.get_by_text("High priority"),
                item.get_by_text("Overdue", exact=True),
                item.get_by_text("Due Sun, Feb 2, 2020 10:00", exact=False),
                item.get_by_role("button", name="#work"),
            ]
            for word in words:
                ratio = word.evaluate(CONTRAST)
                assert ratio >= 4.5, (scheme, word, ratio)
            assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

            item.get_by_role("button", name="Edit").click()
            editor = item.locator("form")
            for name in ORGANISING_FIELDS:
                fits(page, editor.get_by_label(name, exact=True))
            fits(page, editor.get_by_role("button", name="Save"))
            assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
            editor.get_by_role("button", name="Cancel").click()

            item.get_by_role("button", name=f"#{long_tag}").click()
            fits(page, page.get_by_role("button", name="Clear tag filter"))
            expect(page.get_by_text(f"Tagged #{long_tag}")).to_be_visible()
            assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_the_new_controls_work_with_the_keyboard_alone(
    browser: Browser, web_server: WebServer
) -> None:
    email = unique_email("keys")
    token = web_server.sign_up(email)
    web_server.create_tasks(token, ["Zebra crossing", "Apples"])
    with context_of(browser, web_server, locale="en-US") as page:
        page.goto("/")
        log_in(page, email)
        expect(page.get_by_label("Title")).to_be_focused()
        page.keyboard.type("Keyboard task")
        page.keyboard.press("Tab")
        page.keyboard.press("Tab")
        expect(page.get_by_label("Priority")).to_be_focused()
        page.keyboard.press("h")
        page.keyboard.press("Tab")
        expect(page.get_by_label("Due date")).to_be_focused()
        page.keyboard.type("12312030")
        tab_to(page, page.get_by_label("Due time"))
        page.keyboard.type("0930PM")
        tab_to(page, page.get_by_label("Tags"))
        page.keyboard.type("work, home")
        page.keyboard.press("Enter")
        item = task_item(page, "Keyboard task")
        expect(item).to_have_attribute("aria-busy", "false")
        expect(item).to_contain_text("High priority")
        expect(item).to_contain_text("Due Tue, Dec 31, 2030 21:30")
        expect(page.get_by_label("Title")).to_be_focused()

        # A tag's button, then the way back, by Enter.
        tab_to(page, item.get_by_role("button", name="#work"))
        page.keyboard.press("Enter")
        clear = page.get_by_role("button", name="Clear tag filter")
        expect(clear).to_be_focused()
        expect(total(page)).to_have_text("1 tasks")
        page.keyboard.press("Enter")
        expect(total(page)).to_have_text("3 tasks")
        search = page.get_by_role("searchbox", name="Search tasks")
        expect(search).to_be_focused()

        page.keyboard.type("zebra")
        expect(list_titles(page)).to_have_text(["Zebra crossing"])
        page.keyboard.press("Escape")  # a search box's own way to empty itself
        expect(search).to_have_value("")
        expect(total(page)).to_have_text("3 tasks")

        page.keyboard.press("Tab")
        expect(page.get_by_label("Sort by")).to_be_focused()
        page.keyboard.press("t")
        expect(list_titles(page)).to_have_text(["Apples", "Keyboard task", "Zebra crossing"])
        page.keyboard.press("Home")
        expect(list_titles(page)).to_have_text(["Keyboard task", "Apples", "Zebra crossing"])

        # The editor: its fields in order, Enter saves.
        tab_to(page, item.get_by_role("button", name="Edit"))
        page.keyboard.press("Enter")
        editor = item.locator("form")
        expect(editor.get_by_label("Title")).to_be_focused()
        tab_to(page, editor.get_by_label("Priority"))
        page.keyboard.press("l")
        tab_to(page, editor.get_by_label("Tags"))
        page.keyboard.press("ControlOrMeta+a")
        page.keyboard.press("Delete")
        page.keyboard.press("Enter")
        expect(page.get_by_role("status")).to_have_text("Saved.")
        expect(item).to_contain_text("Low priority")
        expect(item.get_by_role("button", name="#work")).to_have_count(0)
        expect(item.get_by_role("button", name="Edit")).to_be_focused()
        stored = web_server.tasks_of(token)["Keyboard task"]
        assert (stored["priority"], stored["tags"]) == ("low", [])
        assert stored["due"]["date"] == "2030-12-31"
        assert stored["due"]["time"] == "21:30:00"
