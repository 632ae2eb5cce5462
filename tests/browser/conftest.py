"""Fixtures of the browser tests: Debian's Chromium driven by Playwright, and the real
`todo-api serve` on the session's PostgreSQL, both started once per test session. Their scope
is this package, so that both stop as soon as the browser tests are done instead of sitting
on the machine's cores and database connections through the rest of the suite.

Without Chromium the tests skip with the reason, on a developer's machine; with
REQUIRE_TEST_NEIGHBOURS=1 (as .ci/run sets it, after installing Chromium) they fail instead.
"""

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, sync_playwright

from tests.browser.support import (
    CHROMIUM_ARGS,
    Requests,
    WebServer,
    chromium_path,
    other_origin,
)
from tests.faults.support import service_env, start_server

DESKTOP = {"width": 1280, "height": 800}
LOGIN_MAX_FAILURES = 3
"""Low, so that the lockout (429) is reached in a few tries."""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives the web app in a real Chromium")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    executable = chromium_path()
    if executable is None:
        reason = "chromium is not installed (apt-get install chromium; .ci/run installs it)"
        if os.environ.get("REQUIRE_TEST_NEIGHBOURS") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="package")
def web_server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebServer]:
    """`todo-api serve` on a free port: bcrypt at cost 4, no per-address limit, and one origin
    (a static server on another port) in CORS_ORIGINS; a second origin stays out of it."""
    directory = tmp_path_factory.mktemp("web-server")
    with other_origin() as allowed, other_origin() as elsewhere:
        env = service_env(
            directory,
            database_url,
            CORS_ORIGINS=allowed,
            LOGIN_MAX_FAILURES=str(LOGIN_MAX_FAILURES),
            LOG_LEVEL="WARNING",
        )
        server = start_server(directory, env, name="web")
        try:
            server.wait_healthy()
            yield WebServer(server.base_url, allowed, elsewhere, server.log, LOGIN_MAX_FAILURES)
        finally:
            with contextlib.suppress(AssertionError):
                server.terminate()
            server.kill()


class Watched:
    """What a page did besides what the test asked: dialogs, console errors, requests."""

    def __init__(self, page: Page) -> None:
        self.dialogs: list[str] = []
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.requests = Requests()
        page.on("dialog", self._dialog)
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        page.on("request", lambda request: self.requests.urls.append(request.url))

    def _dialog(self, dialog) -> None:  # type: ignore[no-untyped-def]
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)

    def refusals(self) -> list[str]:
        """Console errors of a refused script, style or sink (CSP, Trusted Types)."""
        return [text for text in self.console_errors if "Refused" in text or "Trusted" in text]

    def assert_clean(self) -> None:
        """No dialog, no uncaught exception, nothing the browser's policies refused. (4xx
        answers also log console errors: the tests provoke some on purpose.)"""
        assert self.dialogs == []
        assert self.page_errors == []
        assert self.refusals() == []


@pytest.fixture
def context(browser: Browser, web_server: WebServer) -> Iterator[BrowserContext]:
    made = browser.new_context(
        base_url=web_server.base_url, viewport={"width": 1280, "height": 800}
    )
    made.set_default_timeout(10_000)
    yield made
    made.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.fixture
def watched(page: Page) -> Watched:
    return Watched(page)
