"""Fixtures of the HTTP tests: one app over the session's migrated database, emptied per test."""

from collections.abc import Iterator

import pytest
from litestar.testing import TestClient

from entrypoints.http.app import create_app
from entrypoints.settings import BetterAuthSettings
from tests.http.support import METRICS_TOKEN, Account, Client, make_settings

# Where no Better Auth answers: todo-api's own tokens must never need it.
UNREACHABLE_BETTER_AUTH = "http://127.0.0.1:9"


@pytest.fixture(
    scope="session", params=["own-tokens-only", "with-better-auth"], ids=lambda name: name
)
def session_client(database_url: str, request: pytest.FixtureRequest) -> Iterator[Client]:
    """The app over the session's database, its lifespan running for the whole session. Every
    HTTP test runs twice: without BETTER_AUTH_URL, and with it set (to a Better Auth that is
    down), so that Better Auth's tokens change nothing for todo-api's own. It serves /metrics,
    to METRICS_TOKEN."""
    better_auth = (
        BetterAuthSettings.at(UNREACHABLE_BETTER_AUTH)
        if request.param == "with-better-auth"
        else None
    )
    settings = make_settings(database_url, better_auth=better_auth, metrics_token=METRICS_TOKEN)
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture
def client(session_client: Client, clean_database: str) -> Client:
    """The shared app, over a database emptied before the test."""
    return session_client


@pytest.fixture
def alice(client: Client) -> Account:
    return Account(client, "alice@example.com")


@pytest.fixture
def bob(client: Client) -> Account:
    return Account(client, "bob@example.com")
