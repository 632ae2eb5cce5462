"""Fixtures of the HTTP tests: one app over the session's migrated database, emptied per test."""

from collections.abc import Iterator

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from entrypoints.http.app import create_app
from entrypoints.settings import Settings

SECRET = "s" * 40
FRONTEND_ORIGIN = "http://localhost:3000"


def make_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "auth_secret": SECRET,
        "database_url": database_url,
        "bcrypt_rounds": 4,
        "cors_origins": (FRONTEND_ORIGIN,),
        "pool_min_size": 1,
        "pool_max_size": 4,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def session_client(database_url: str) -> Iterator[TestClient[Litestar]]:
    """The app over the session's database, its lifespan running for the whole session."""
    with TestClient(create_app(make_settings(database_url))) as client:
        yield client


@pytest.fixture
def client(session_client: TestClient[Litestar], clean_database: str) -> TestClient[Litestar]:
    """The shared app over a database emptied before the test."""
    session_client.headers.clear()
    session_client.cookies.clear()
    return session_client
