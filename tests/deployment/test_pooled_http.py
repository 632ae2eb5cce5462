"""The HTTP suite's task and auth scenarios, and a test of every other endpoint, run again with
the app's DATABASE_URL going through PgBouncer in transaction mode (prepared statements off, as
the README says to run behind such a pooler). The scenarios are imported from tests/http; the
fixtures below give them a client over the pooler instead of the direct connection."""

from collections.abc import Iterator

import pytest
from litestar.testing import TestClient

from entrypoints.http.app import create_app
from tests.deployment.conftest import Database
from tests.http.conftest import alice, bob, client  # noqa: F401 - the same fixtures, over the pooler
from tests.http.support import METRICS_TOKEN, Client, make_settings
from tests.http.test_auth import *  # noqa: F403 - every auth scenario, collected again here
from tests.http.test_hardening import (  # noqa: F401 - collected again here
    app_with,
    test_changing_the_password_revokes_older_tokens_and_answers_a_fresh_one,
    test_deleting_the_account_removes_it_and_its_tasks,
    test_logout_all_revokes_every_earlier_token_of_the_caller_only,
    test_the_lock_lives_in_the_database_and_holds_in_another_app_instance,
)
from tests.http.test_platform import test_health_is_200_when_the_database_answers  # noqa: F401
from tests.http.test_resilience import (  # noqa: F401
    test_metrics_count_requests_by_method_route_and_status,
)
from tests.http.test_tasks import *  # noqa: F403 - every task scenario, collected again here


@pytest.fixture(scope="session")
def database_url(migrated_pooled_database: Database) -> str:
    """The direct URL of the pooled tests' database: what the scenarios use to look at or
    empty the database themselves, and to start a second app (as another process would)."""
    return migrated_pooled_database.direct


@pytest.fixture(scope="session")
def session_client(migrated_pooled_database: Database) -> Iterator[Client]:
    settings = make_settings(
        migrated_pooled_database.pooled, prepare_threshold=None, metrics_token=METRICS_TOKEN
    )
    with TestClient(create_app(settings)) as pooled:
        yield pooled
