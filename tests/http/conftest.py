"""Fixtures of the HTTP tests: one app over the session's migrated database, emptied per test."""

from collections.abc import Iterator

import pytest
from litestar.testing import TestClient

from entrypoints.http.app import create_app
from tests.http.support import Account, Client, make_settings


@pytest.fixture(scope="session")
def session_client(database_url: str) -> Iterator[Client]:
    """The app over the session's database, its lifespan running for the whole session."""
    with TestClient(create_app(make_settings(database_url))) as client:
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
