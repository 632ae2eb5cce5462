"""The contract every repository adapter must honour, in memory and in PostgreSQL alike.

Each test runs twice, once per adapter, so that the in-memory fakes the unit tests rely on
cannot drift from the real thing.
"""

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from typing import TypeVar

import pytest
from psycopg_pool import AsyncConnectionPool

from adapters.email import EmailValidatorPolicy
from adapters.memory import (
    FixedClock,
    InMemoryIdempotencyStore,
    InMemoryLinkedIdentities,
    InMemoryLoginAttemptStore,
    InMemoryRevocationStore,
    InMemoryTaskRepository,
    InMemoryTokenSubjects,
    InMemoryTransactions,
    InMemoryUserRepository,
)
from adapters.postgres.idempotency import PostgresIdempotencyStore
from adapters.postgres.identities import PostgresLinkedIdentities
from adapters.postgres.pool import PostgresDatabase
from adapters.postgres.tasks import PostgresTaskRepository
from adapters.postgres.throttling import PostgresLoginAttemptStore
from adapters.postgres.tokens import PostgresRevocationStore, PostgresTokenSubjects
from adapters.postgres.users import PostgresUserRepository
from application.errors import TokenRevoked, UserNotFound
from application.ports import (
    Caller,
    CallerTasks,
    EarlierCreation,
    FailedLogins,
    IdempotencyStore,
    LinkedIdentities,
    LoginAttemptStore,
    RevocationStore,
    TaskPage,
    TaskRepository,
    TokenSubjects,
    Transactions,
    UserRepository,
)
from domain.errors import EmailAlreadyRegistered, TaskAccessDenied
from domain.queries import TaskPosition, TaskQuery, TaskSort, position_of
from domain.tasks import Task, TaskChanges, apply_changes, new_task, next_version
from domain.users import User
from tests.integration.support import opened_pool


def now() -> datetime:
    """When a list is read: what is overdue is decided by it."""
    return datetime.now(UTC)


_T = TypeVar("_T")

# Microseconds on purpose: PostgreSQL keeps them, and a round trip must not lose them.
T0 = datetime(2024, 5, 1, 12, 30, 45, 123456, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)

FailedLoginsReader = Callable[[str], Awaitable[FailedLogins | None]]
NEWEST = TaskSort.NEWEST


def stamp(task: Task) -> tuple[datetime, uuid.UUID]:
    """What orders tasks newest first, reversed."""
    return (task.created_at, task.id)


def position(task: Task) -> TaskPosition:
    return position_of(task, NEWEST)


@dataclass(frozen=True, slots=True)
class Repositories:
    users: UserRepository
    tasks: TaskRepository
    revocations: RevocationStore
    token_subjects: TokenSubjects
    logins: LoginAttemptStore
    idempotency: IdempotencyStore
    transactions: Transactions
    identities: LinkedIdentities
    failed_logins: FailedLoginsReader
    """What is counted against an account key, None when nothing is: read past the port,
    which has no reader of its own."""


@pytest.fixture(params=["memory", "postgres"])
async def repos(request: pytest.FixtureRequest) -> AsyncIterator[Repositories]:
    if request.param == "memory":
        users = InMemoryUserRepository()
        revocations = InMemoryRevocationStore(clock=FixedClock(datetime.now(UTC)))
        tasks = InMemoryTaskRepository(users, revocations)
        logins = InMemoryLoginAttemptStore()
        idempotency = InMemoryIdempotencyStore()
        identities = InMemoryLinkedIdentities(users, revocations)
        yield Repositories(
            users=users,
            tasks=tasks,
            revocations=revocations,
            token_subjects=InMemoryTokenSubjects(users, revocations),
            logins=logins,
            idempotency=idempotency,
            transactions=InMemoryTransactions(
                users, tasks, revocations, logins, idempotency, identities
            ),
            identities=identities,
            failed_logins=failures_counted_in_memory(logins),
        )
        return
    url: str = request.getfixturevalue("clean_database")
    async with opened_pool(url, min_size=1, max_size=4) as pool:
        database = PostgresDatabase(pool)
        yield Repositories(
            users=PostgresUserRepository(database),
            tasks=PostgresTaskRepository(database),
            revocations=PostgresRevocationStore(database),
            token_subjects=PostgresTokenSubjects(database),
            logins=PostgresLoginAttemptStore(database),
            idempotency=PostgresIdempotencyStore(database),
            transactions=database,
            identities=PostgresLinkedIdentities(database),
            failed_logins=failures_counted_in_postgres(pool),
        )


def failures_counted_in_memory(logins: InMemoryLoginAttemptStore) -> FailedLoginsReader:
    async def failed_logins(account_key: str) -> FailedLogins | None:
        return logins.failures_of(account_key)

    return failed_logins


def failures_counted_in_postgres(pool: AsyncConnectionPool) -> FailedLoginsReader:
    async def failed_logins(account_key: str) -> FailedLogins | None:
        async with pool.connection() as connection:
            cursor = await connection.execute(
                """SELECT failures, window_started_at FROM login_failures
                   WHERE account_key = %(key)s""",
                {"key": account_key},
            )
            row = await cursor.fetchone()
        return None if row is None else FailedLogins(row[0], row[1].astimezone(UTC))

    return failed_logins


def a_user(email: str = "alice@example.com", *, at: datetime = T0) -> User:
    return User(
        id=uuid.uuid4(),
        email=email,
        password_hash="$2b$04$not-a-real-hash",
        created_at=at,
        updated_at=at,
    )


def a_task(
    owner: User,
    title: str = "Buy milk",
    *,
    description: str | None = None,
    completed: bool = False,
    at: datetime = T0,
) -> Task:
    return new_task(
        task_id=uuid.uuid4(),
        owner_id=owner.id,
        title=title,
        description=description,
        completed=completed,
        now=at,
    )


def caller_of(user: User) -> Caller:
    """The user as a caller holding no token (as the command line acts for a user it looked
    up), issued a day after the user was created: later than any cut-off of the tests, so
    admitted for as long as the user exists."""
    return Caller(user.id, token_key=None, issued_at=user.created_at + timedelta(days=1))


def tasks_of(repos: Repositories, user: User) -> CallerTasks:
    """The tasks as the user, admitted, may see and change them."""
    return repos.tasks.for_caller(caller_of(user))


async def outcome(call: Awaitable[_T]) -> _T | type[Exception]:
    """What the call returns, or the type of what it raises."""
    try:
        return await call
    except Exception as error:
        return type(error)


def assert_utc(moment: datetime) -> None:
    assert moment.tzinfo is not None
    assert moment.utcoffset() == timedelta(0)


def newest_first(tasks: list[Task]) -> list[uuid.UUID]:
    return [t.id for t in sorted(tasks, key=lambda t: (t.created_at, t.id), reverse=True)]


# --- users -------------------------------------------------------------------------------------


async def test_an_added_user_comes_back_unchanged_by_id_and_by_email(repos: Repositories) -> None:
    user = a_user()

    stored = await repos.users.add(user)

    assert stored == user
    assert await repos.users.get(user.id) == user
    assert await repos.users.get_by_email("alice@example.com") == user


async def test_user_timestamps_come_back_timezone_aware_utc_to_the_microsecond(
    repos: Repositories,
) -> None:
    user = replace(a_user(), updated_at=T0 + timedelta(microseconds=7))
    await repos.users.add(user)

    found = await repos.users.get(user.id)

    assert found is not None
    assert_utc(found.created_at)
    assert_utc(found.updated_at)
    assert found.created_at == T0
    assert found.updated_at == T0 + timedelta(microseconds=7)


async def test_unknown_users_are_none(repos: Repositories) -> None:
    await repos.users.add(a_user())

    assert await repos.users.get(uuid.uuid4()) is None
    assert await repos.users.get_by_email("bob@example.com") is None


async def test_lookup_by_email_finds_the_account_whatever_case_the_address_was_typed_in(
    repos: Repositories,
) -> None:
    # The application stores and looks up the normalised address; this is the round trip it
    # relies on for "A@x.io and a@x.io are the same account".
    emails = EmailValidatorPolicy()
    user = a_user(emails.normalize("  Alice.Smith@Example.COM "))
    await repos.users.add(user)

    found = await repos.users.get_by_email(emails.normalize("ALICE.SMITH@example.com"))

    assert found == user


async def test_a_taken_email_is_refused_and_the_first_account_is_kept(
    repos: Repositories,
) -> None:
    first = await repos.users.add(a_user("alice@example.com"))
    second = a_user("alice@example.com", at=T0 + timedelta(hours=1))

    with pytest.raises(EmailAlreadyRegistered):
        await repos.users.add(second)

    assert await repos.users.get(second.id) is None
    assert await repos.users.get_by_email("alice@example.com") == first


async def test_two_concurrent_registrations_of_one_email_store_exactly_one_account(
    repos: Repositories,
) -> None:
    contenders = [a_user("race@example.com") for _ in range(4)]

    results = await asyncio.gather(
        *(repos.users.add(user) for user in contenders), return_exceptions=True
    )

    winners = [r for r in results if isinstance(r, User)]
    losers = [r for r in results if not isinstance(r, User)]
    assert len(winners) == 1
    assert len(losers) == 3
    assert all(isinstance(r, EmailAlreadyRegistered) for r in losers)
    assert await repos.users.get_by_email("race@example.com") == winners[0]


async def test_deleting_a_user_reports_whether_there_was_one(repos: Repositories) -> None:
    user = await repos.users.add(a_user())

    assert await repos.users.delete(user.id) is True
    assert await repos.users.get(user.id) is None
    assert await repos.users.get_by_email(user.email) is None
    assert await repos.users.delete(user.id) is False
    assert await repos.users.delete(uuid.uuid4()) is False


async def test_deleting_a_user_deletes_their_tasks_and_nobody_elses(repos: Repositories) -> None:
    alice = await repos.users.add(a_user("alice@example.com"))
    bob = await repos.users.add(a_user("bob@example.com"))
    alices = [await tasks_of(repos, alice).add(a_task(alice, f"alice {i}")) for i in range(3)]
    bobs = await tasks_of(repos, bob).add(a_task(bob, "bob's"))
    # To another user, an id of a stored task is someone else's task...
    with pytest.raises(TaskAccessDenied):
        await tasks_of(repos, bob).get(alices[0].id)

    assert await repos.users.delete(alice.id) is True

    # ...and of a deleted one, no task at all.
    for task in alices:
        assert await tasks_of(repos, bob).get(task.id) is None
    with pytest.raises(UserNotFound):
        await tasks_of(repos, alice).list(TaskQuery(), now())
    assert await tasks_of(repos, bob).get(bobs.id) == bobs
    assert await repos.users.get(bob.id) == bob
    # Nothing left behind for an account made again under the same id, not even a count.
    await repos.users.add(alice)
    page = await tasks_of(repos, alice).list(TaskQuery(), now())
    assert (list(page.tasks), page.total) == ([], 0)


async def test_the_email_of_a_deleted_user_can_be_registered_again(repos: Repositories) -> None:
    old = await repos.users.add(a_user("alice@example.com"))
    await repos.users.delete(old.id)

    new = await repos.users.add(a_user("alice@example.com"))

    assert await repos.users.get_by_email("alice@example.com") == new


# --- tasks -------------------------------------------------------------------------------------


async def test_an_added_task_comes_back_unchanged(repos: Repositories) -> None:
    owner = await repos.users.add(a_user())
    tasks = tasks_of(repos, owner)
    task = a_task(owner, "Write tests", description='Ünïcödé ✓ — and "quotes"', completed=True)

    stored = await tasks.add(task)

    assert stored == task
    found = await tasks.get(task.id)
    assert found == task
    assert found is not None
    assert_utc(found.created_at)
    assert_utc(found.updated_at)
    assert found.created_at == T0


async def test_a_task_without_description_keeps_none(repos: Repositories) -> None:
    owner = await repos.users.add(a_user())
    tasks = tasks_of(repos, owner)
    task = await tasks.add(a_task(owner, description=None))

    found = await tasks.get(task.id)

    assert found is not None
    assert found.description is None


async def test_get_of_an_id_that_no_task_has_is_none(repos: Repositories) -> None:
    owner = await repos.users.add(a_user())
    tasks = tasks_of(repos, owner)
    await tasks.add(a_task(owner))

    assert await tasks.get(uuid.uuid4()) is None


async def test_update_stores_title_description_and_completed_and_returns_the_stored_task(
    repos: Repositories,
) -> None:
    owner = await repos.users.add(a_user())
    tasks = tasks_of(repos, owner)
    task = await tasks.add(a_task(owner, "Old title", description="old"))
    changed = apply_changes(
        task, TaskChanges(title="New title", description="new", completed=True), datetime.now(UTC)
    )

    updated = await tasks.update(changed)

    assert updated is not None
    assert (updated.id, updated.owner_id) == (task.id, owner.id)
    assert (updated.title, updated.description, updated.completed) == ("New title", "new", True)
    assert updated.created_at == task.created_at
    assert updated.updated_at > task.updated_at
    assert_utc(updated.created_at)
    assert_utc(updated.updated_at)
    assert await tasks.get(task.id) == updated


async def test_update_can_clear_the_description(repos: Repositories) -> None:
    owner = await repos.users.add(a_user())
    tasks = tasks_of(repos, owner)
    task = await tasks.add(a_task(owner, description="something"))

    updated = await tasks.update(apply_changes(task, TaskChanges(description=None), now()))

    assert updated is not None
    assert updated.description is None
    stored = await tasks.get(task.id)
    assert stored is not None
    assert stored.description is None


async def test_update_never_changes_owner_or_created_at(repos: Repositories) -> None:
    alice = await repos.users.add(a_user("alice@example.com"))
    bob = await repos.users.add(a_user("bob@example.com"))
    tasks = tasks_of(repos, alice)
    task = await tasks.add(a_task(alice))
    tampered = replace(
        apply_changes(task, TaskChanges(title="Renamed"), now()),
        owner_id=bob.id,
        created_at=T0 + timedelta(days=3),
    )

    updated = await tasks.update(tampered)

    assert updated is not None
    assert updated.title == "Renamed"
    assert updated.owner_id == alice.id
    assert updated.created_at == T0
    assert await tasks.get(task.id) == updated
    page = await tasks_of(repos, bob).list(TaskQuery(), now())
    assert page.total == 0


async def test_the_store_moves_updated_at_whatever_the_updated_task_carries(
    repos: Repositories,
) -> None:
    owner = await repos.users.add(a_user())
    tasks = tasks_of(repos, owner)
    task = await tasks.add(a_task(owner))
    far_future = datetime.now(UTC) + timedelta(days=3650)

    # Back before the stored version, the stored version itself, or far ahead of every clock.
    for n, carried in enumerate([T0 - timedelta(days=1), None, far_future]):
        stored = await tasks.get(task.id)
        assert stored is not None
        changed = apply_changes(stored, TaskChanges(title=f"take {n}"), now())
        updated = await tasks.update(
            changed if carried is None else replace(changed, updated_at=carried)
        )

        assert updated is not None
        assert updated.title == f"take {n}"
        assert stored.updated_at < updated.updated_at < far_future, carried
        assert await tasks.get(task.id) == updated


async def test_updated_at_moves_strictly_forward_on_every_update(repos: Repositories) -> None:
    owner = await repos.users.add(a_user())
    tasks = tasks_of(repos, owner)
    # A stored updated_at ahead of every clock: a clock that stepped back must not move it back.
    future = datetime.now(UTC) + timedelta(days=365)
    current = await tasks.add(replace(a_task(owner), updated_at=future))

    seen = [current.updated_at]
    for n in range(3):
        updated = await tasks.update(apply_changes(current, TaskChanges(title=f"take {n}"), now()))
        assert updated is not None
        # One tick past the stored version, the clock being behind it (next_version).
        assert updated.updated_at == next_version(current.updated_at, now())
        seen.append(updated.updated_at)
        current = updated

    assert seen == [future + n * MICROSECOND for n in range(4)]


async def test_update_of_a_task_that_no_longer_exists_is_none(repos: Repositories) -> None:
    owner = await repos.users.add(a_user())
    tasks = tasks_of(repos, owner)
    task = await tasks.add(a_task(owner))
    await tasks.delete(task.id)

    assert await tasks.update(apply_changes(task, TaskChanges(title="x"), now())) is None
    assert await tasks.update(a_task(owner)) is None
    assert await tasks.get(task.id) is None


async def test_delete_removes_only_that_task_and_reports_whether_it_existed(
    repos: Repositories,
) -> None:
    owner = await repos.users.add(a_user())
    tasks = tasks_of(repos, owner)
    doomed = await tasks.add(a_task(owner, "doomed"))
    kept = await tasks.add(a_task(owner, "kept"))

    assert await tasks.delete(doomed.id) is True
    assert await tasks.get(doomed.id) is None
    assert await tasks.get(kept.id) == kept
    assert await tasks.delete(doomed.id) is False
    assert await tasks.delete(uuid.uuid4()) is False


# --- each user's tasks only --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Neighbours:
    alice: User
    bob: User
    alices: Task
    """Alice's one stored task, which Bob tries his hand at."""


async def neighbours(repos: Repositories) -> Neighbours:
    alice = await repos.users.add(a_user("alice@example.com"))
    bob = await repos.users.add(a_user("bob@example.com"))
    alices = await tasks_of(repos, alice).add(a_task(alice, "Alice's", description="hers"))
    return Neighbours(alice, bob, alices)


async def test_get_of_another_users_task_is_denied_and_returns_nothing_of_it(
    repos: Repositories,
) -> None:
    scene = await neighbours(repos)
    bobs = tasks_of(repos, scene.bob)

    with pytest.raises(TaskAccessDenied):
        await bobs.get(scene.alices.id)
    with pytest.raises(TaskAccessDenied):
        async with repos.transactions.atomic():
            await bobs.get(scene.alices.id, for_update=True)
    # Denied because the task is there: once it is gone, there is nothing to deny.
    assert await tasks_of(repos, scene.alice).delete(scene.alices.id) is True
    assert await bobs.get(scene.alices.id) is None


async def test_an_update_of_another_users_task_is_none_and_leaves_it_unchanged(
    repos: Repositories,
) -> None:
    scene = await neighbours(repos)
    bobs = tasks_of(repos, scene.bob)
    changed = apply_changes(
        scene.alices,
        TaskChanges(title="Taken over", description=None, completed=True),
        datetime.now(UTC),
    )

    assert await bobs.update(changed) is None
    assert await bobs.update(changed, expected_versions=[scene.alices.updated_at]) is None
    # Nor does a task that claims to be his change hers.
    assert await bobs.update(replace(changed, owner_id=scene.bob.id)) is None

    assert await tasks_of(repos, scene.alice).get(scene.alices.id) == scene.alices
    page = await bobs.list(TaskQuery(), now())
    assert (list(page.tasks), page.total) == ([], 0)


async def test_a_delete_of_another_users_task_is_false_and_leaves_it_there(
    repos: Repositories,
) -> None:
    scene = await neighbours(repos)
    bobs = tasks_of(repos, scene.bob)

    assert await bobs.delete(scene.alices.id) is False
    assert await bobs.delete(scene.alices.id, expected_versions=[scene.alices.updated_at]) is False

    alices = tasks_of(repos, scene.alice)
    assert await alices.get(scene.alices.id) == scene.alices
    page = await alices.list(TaskQuery(), now())
    assert (list(page.tasks), page.total) == ([scene.alices], 1)


async def test_adding_a_task_owned_by_someone_else_is_denied_and_stores_nothing(
    repos: Repositories,
) -> None:
    scene = await neighbours(repos)
    bobs = tasks_of(repos, scene.bob)
    planted = a_task(scene.alice, "Planted by Bob")
    orphan = a_task(a_user("nobody@example.com"), "Owned by nobody")

    for task in (planted, orphan):
        with pytest.raises(TaskAccessDenied):
            await bobs.add(task)

    alices = tasks_of(repos, scene.alice)
    for task in (planted, orphan):
        assert await alices.get(task.id) is None
        assert await bobs.get(task.id) is None
    assert [t.id for t in (await alices.list(TaskQuery(), now())).tasks] == [scene.alices.id]
    assert (await bobs.list(TaskQuery(), now())).total == 0


# --- conditional writes ------------------------------------------------------------------------


def versions_that_do_not_match(version: datetime) -> list[list[datetime] | set[datetime]]:
    return [
        [version - MICROSECOND],
        [version + MICROSECOND],
        {version - timedelta(days=1), version + timedelta(seconds=1)},
        [],  # an empty collection never matches
        set(),
    ]


async def test_update_with_expected_versions_happens_only_when_the_stored_version_is_one_of_them(
    repos: Repositories,
) -> None:
    owner = await repos.users.add(a_user())
    tasks = tasks_of(repos, owner)
    task = await tasks.add(a_task(owner, "Original", description="kept"))
    v0 = task.updated_at
    changed = apply_changes(task, TaskChanges(title="Changed"), now())

    for versions in versions_that_do_not_match(v0):
        assert await tasks.update(changed, expected_versions=versions) is None, versions
        assert await tasks.get(task.id) == task

    updated = await tasks.update(
        changed, expected_versions=[v0 - timedelta(seconds=1), v0, v0 + timedelta(seconds=1)]
    )

    assert updated is not None
    assert (updated.title, updated.description) == ("Changed", "kept")
    assert updated.updated_at > v0
    assert await tasks.get(task.id) == updated


async def test_a_version_stops_matching_once_the_task_has_changed(repos: Repositories) -> None:
    owner = await repos.users.add(a_user())
    tasks = tasks_of(repos, owner)
    task = await tasks.add(a_task(owner, "Original"))
    v0 = task.updated_at
    first = await tasks.update(
        apply_changes(task, TaskChanges(title="First"), now()), expected_versions={v0}
    )
    assert first is not None
    v1 = first.updated_at
    assert v1 > v0

    # A second writer that saw v0 loses, whether it updates or deletes.
    stale = apply_changes(task, TaskChanges(title="Stale"), now())
    assert await tasks.update(stale, expected_versions=[v0]) is None
    assert await tasks.delete(task.id, expected_versions=[v0]) is False
    assert await tasks.get(task.id) == first

    # The current version matches, however the instant is written.
    kathmandu = timezone(timedelta(hours=5, minutes=45))
    second = await tasks.update(
        apply_changes(first, TaskChanges(completed=True), now()),
        expected_versions=(v0, v1.astimezone(kathmandu)),
    )
    assert second is not None
    assert (second.title, second.completed) == ("First", True)
    assert second.updated_at > v1


async def test_update_without_expected_versions_is_unconditional(repos: Repositories) -> None:
    owner = await repos.users.add(a_user())
    tasks = tasks_of(repos, owner)
    task = await tasks.add(a_task(owner, "Original"))
    first = await tasks.update(apply_changes(task, TaskChanges(title="First"), now()))
    assert first is not None

    # Built from the stale task: no version is checked.
    second = await tasks.update(
        apply_changes(task, TaskChanges(title="Second"), now()), expected_versions=None
    )

    assert second is not None
    assert second.title == "Second"
    assert second.updated_at > first.updated_at
    assert await tasks.get(task.id) == second


async def test_update_with_expected_versions_of_a_task_that_is_gone_is_none(
    repos: Repositories,
) -> None:
    owner = await repos.users.add(a_user())
    tasks = tasks_of(repos, owner)
    task = await tasks.add(a_task(owner))
    await tasks.delete(task.id)

    changed = apply_changes(task, TaskChanges(title="x"), now())
    assert await tasks.update(changed, expected_versions=[task.updated_at]) is None
    assert await tasks.get(task.id) is None


async def test_delete_with_expected_versions_happens_only_when_the_stored_version_is_one_of_them(
    repos: Repositories,
) -> None:
    owner = await repos.users.add(a_user())
    tasks = tasks_of(repos, owner)
    task = await tasks.add(a_task(owner, "doomed"))
    other = await tasks.add(a_task(owner, "other"))
    v0 = task.updated_at

    for versions in versions_that_do_not_match(v0):
        assert await tasks.delete(task.id, expected_versions=versions) is False, versions
        assert await tasks.get(task.id) == task

    assert await tasks.delete(task.id, expected_versions=[v0 + MICROSECOND, v0]) is True
    assert await tasks.get(task.id) is None
    assert await tasks.delete(task.id, expected_versions=[v0]) is False
    assert await tasks.get(other.id) == other


async def test_delete_without_expected_versions_is_unconditional(repos: Repositories) -> None:
    owner = await repos.users.add(a_user())
    tasks = tasks_of(repos, owner)
    task = await tasks.add(a_task(owner))
    changed = await tasks.update(apply_changes(task, TaskChanges(title="changed"), now()))
    assert changed is not None

    assert await tasks.delete(task.id, expected_versions=None) is True
    assert await tasks.get(task.id) is None


# --- listing -----------------------------------------------------------------------------------


async def add_in_random_order(repos: Repositories, tasks: list[Task]) -> None:
    """Each task added by its owner, in an order that is not the tasks' own."""
    shuffled = list(tasks)
    random.Random(20240501).shuffle(shuffled)
    for task in shuffled:
        owner = await repos.users.get(task.owner_id)
        assert owner is not None
        await tasks_of(repos, owner).add(task)


async def test_list_is_newest_first_with_ties_broken_by_id_descending(
    repos: Repositories,
) -> None:
    owner = await repos.users.add(a_user())
    tied = [a_task(owner, f"tied {i}", at=T0) for i in range(8)]
    # Created one microsecond apart: ordering must not lose sub-second precision.
    older = a_task(owner, "older", at=T0 - timedelta(microseconds=1))
    newer = a_task(owner, "newer", at=T0 + timedelta(microseconds=1))
    everything = [*tied, older, newer]
    await add_in_random_order(repos, everything)

    page = await tasks_of(repos, owner).list(TaskQuery(limit=100), now())

    ids = [t.id for t in page.tasks]
    assert ids == newest_first(everything)
    assert ids[0] == newer.id
    assert ids[-1] == older.id
    assert ids[1:-1] == sorted((t.id for t in tied), reverse=True)
    assert page.total == 10


async def test_listed_tasks_are_the_stored_tasks_with_utc_timestamps(repos: Repositories) -> None:
    owner = await repos.users.add(a_user())
    tasks = tasks_of(repos, owner)
    task = await tasks.add(a_task(owner, description="d", completed=True))

    page = await tasks.list(TaskQuery(limit=10), now())

    assert list(page.tasks) == [task]
    assert_utc(page.tasks[0].created_at)
    assert_utc(page.tasks[0].updated_at)


async def test_pages_follow_each_other_without_gaps_or_repeats_and_total_counts_all(
    repos: Repositories,
) -> None:
    owner = await repos.users.add(a_user())
    # Several creation times, each shared by several tasks: pages must still be stable.
    everything = [a_task(owner, f"task {i}", at=T0 + timedelta(seconds=i % 3)) for i in range(11)]
    await add_in_random_order(repos, everything)
    tasks = tasks_of(repos, owner)

    seen: list[uuid.UUID] = []
    for offset in range(0, 12, 4):
        page = await tasks.list(TaskQuery(limit=4, offset=offset), now())
        assert page.total == 11
        seen += [t.id for t in page.tasks]

    assert seen == newest_first(everything)


async def test_limit_and_offset_cut_the_ordered_list(repos: Repositories) -> None:
    owner = await repos.users.add(a_user())
    everything = [a_task(owner, f"task {i}", at=T0 + timedelta(minutes=i)) for i in range(6)]
    await add_in_random_order(repos, everything)
    order = newest_first(everything)
    tasks = tasks_of(repos, owner)

    first = await tasks.list(TaskQuery(limit=1, offset=0), now())
    middle = await tasks.list(TaskQuery(limit=2, offset=2), now())
    tail = await tasks.list(TaskQuery(limit=100, offset=4), now())
    beyond = await tasks.list(TaskQuery(limit=10, offset=6), now())

    assert [t.id for t in first.tasks] == order[:1]
    assert [t.id for t in middle.tasks] == order[2:4]
    assert [t.id for t in tail.tasks] == order[4:]
    assert list(beyond.tasks) == []
    assert {first.total, middle.total, tail.total, beyond.total} == {6}


async def test_the_completed_filter_selects_tasks_and_total_counts_only_matching_ones(
    repos: Repositories,
) -> None:
    owner = await repos.users.add(a_user())
    everything = [
        a_task(owner, f"task {i}", completed=i % 3 == 0, at=T0 + timedelta(seconds=i))
        for i in range(9)
    ]
    await add_in_random_order(repos, everything)
    done = [t for t in everything if t.completed]
    open_ = [t for t in everything if not t.completed]
    tasks = tasks_of(repos, owner)

    completed = await tasks.list(TaskQuery(completed=True, limit=100), now())
    pending = await tasks.list(TaskQuery(completed=False, limit=100), now())
    pending_page = await tasks.list(TaskQuery(completed=False, limit=2, offset=2), now())

    assert [t.id for t in completed.tasks] == newest_first(done)
    assert completed.total == 3
    assert [t.id for t in pending.tasks] == newest_first(open_)
    assert pending.total == 6
    assert [t.id for t in pending_page.tasks] == newest_first(open_)[2:4]
    assert pending_page.total == 6


async def test_a_list_never_contains_another_owners_tasks(repos: Repositories) -> None:
    alice = await repos.users.add(a_user("alice@example.com"))
    bob = await repos.users.add(a_user("bob@example.com"))
    carol = await repos.users.add(a_user("carol@example.com"))
    alices = [a_task(alice, f"alice {i}", completed=i == 0) for i in range(3)]
    bobs = [a_task(bob, f"bob {i}", completed=True) for i in range(4)]
    await add_in_random_order(repos, [*alices, *bobs])

    for completed in (None, True, False):
        page = await tasks_of(repos, alice).list(TaskQuery(completed=completed, limit=100), now())
        assert {t.owner_id for t in page.tasks} <= {alice.id}
        expected = [t for t in alices if completed is None or t.completed == completed]
        assert page.total == len(expected)
        assert {t.id for t in page.tasks} == {t.id for t in expected}

    bobs_page = await tasks_of(repos, bob).list(TaskQuery(limit=100), now())
    assert {t.id for t in bobs_page.tasks} == {t.id for t in bobs}
    nobody = await tasks_of(repos, carol).list(TaskQuery(limit=100), now())
    assert (list(nobody.tasks), nobody.total) == ([], 0)


# --- keyset paging -----------------------------------------------------------------------------


async def twelve_tasks_with_ties(repos: Repositories) -> tuple[CallerTasks, list[Task]]:
    """Twelve of one owner's tasks (every third completed) at five moments, most of them shared
    by several tasks, some a microsecond apart; and another owner's tasks at the same moments.
    Returns the owner's tasks as the owner sees them, and the twelve."""
    owner = await repos.users.add(a_user("alice@example.com"))
    other = await repos.users.add(a_user("bob@example.com"))
    moments = [T0 + timedelta(seconds=s, microseconds=us) for s, us in [(0, 0), (0, 1), (1, 0)]]
    moments += [T0 - timedelta(days=1), T0 + timedelta(days=1)]
    owners = [
        a_task(owner, f"task {i}", completed=i % 3 == 0, at=moments[i % 5 if i < 10 else 0])
        for i in range(12)
    ]
    others = [a_task(other, f"bob {i}", completed=i % 2 == 0, at=moments[i]) for i in range(5)]
    await add_in_random_order(repos, [*owners, *others])
    return tasks_of(repos, owner), owners


def matching(tasks: list[Task], completed: bool | None) -> list[Task]:
    """The tasks a filter selects, newest first."""
    selected = [t for t in tasks if completed is None or t.completed == completed]
    return sorted(selected, key=stamp, reverse=True)


def assert_page_is_consistent(page: TaskPage) -> None:
    if page.has_more:
        assert page.tasks
        assert page.next_position(NEWEST) == position(page.tasks[-1])
    else:
        assert page.next_position(NEWEST) is None


async def test_walking_keyset_pages_yields_every_task_once_in_the_order_of_offset_paging(
    repos: Repositories,
) -> None:
    owners, tasks = await twelve_tasks_with_ties(repos)

    for completed in (None, True, False):
        expected = [t.id for t in matching(tasks, completed)]
        assert len(set(expected)) == len(expected) > 0
        # Some limits divide the number of matching tasks (12, 4 and 8) exactly, others do not.
        for limit in (1, 3, 4, 5, 12, 50):
            pages: list[TaskPage] = []
            after: TaskPosition | None = None
            while True:
                page = await owners.list(
                    TaskQuery(completed=completed, limit=limit, after=after), now()
                )
                pages.append(page)
                assert len(pages) <= len(expected), "the walk does not end"
                if page.next_position(NEWEST) is None:
                    break
                after = page.next_position(NEWEST)

            offset_paged = [
                t.id
                for offset in range(0, len(expected), limit)
                for t in (
                    await owners.list(
                        TaskQuery(completed=completed, limit=limit, offset=offset), now()
                    )
                ).tasks
            ]
            walked = [t.id for page in pages for t in page.tasks]
            context = f"completed={completed} limit={limit}"
            assert walked == expected, context
            assert offset_paged == expected, context
            # Full pages until the last, which is never empty and never says there is more.
            assert [len(page.tasks) for page in pages[:-1]] == [limit] * (len(pages) - 1), context
            assert 0 < len(pages[-1].tasks) <= limit, context
            assert [page.has_more for page in pages] == [True] * (len(pages) - 1) + [False]
            assert {page.total for page in pages} == {len(expected)}, context
            for page in pages:
                assert_page_is_consistent(page)


async def test_after_a_task_lists_exactly_the_matching_tasks_strictly_after_it(
    repos: Repositories,
) -> None:
    owners, tasks = await twelve_tasks_with_ties(repos)

    for completed in (None, True, False):
        selected = matching(tasks, completed)
        # After each of the owner's tasks, whether or not the filter selects it.
        for task in tasks:
            expected = [t.id for t in selected if stamp(t) < stamp(task)]
            whole = await owners.list(
                TaskQuery(completed=completed, limit=100, after=position(task)), now()
            )
            short = await owners.list(
                TaskQuery(completed=completed, limit=2, after=position(task)), now()
            )
            context = f"completed={completed} after={task.title}"
            assert [t.id for t in whole.tasks] == expected, context
            assert task.id not in [t.id for t in whole.tasks], context
            assert (whole.has_more, whole.total) == (False, len(selected)), context
            assert whole.next_position(NEWEST) is None, context
            assert [t.id for t in short.tasks] == expected[:2], context
            assert short.has_more == (len(expected) > 2), context
            assert short.total == len(selected), context
            assert_page_is_consistent(short)


async def test_ties_on_created_at_are_split_by_id_at_the_position(repos: Repositories) -> None:
    owner = await repos.users.add(a_user())
    tied = [a_task(owner, f"tied {i}", at=T0) for i in range(6)]
    older = a_task(owner, "older", at=T0 - timedelta(microseconds=1))
    newer = a_task(owner, "newer", at=T0 + timedelta(microseconds=1))
    await add_in_random_order(repos, [*tied, older, newer])
    ids = sorted((t.id for t in tied), reverse=True)
    between = uuid.UUID(int=(ids[2].int + ids[3].int) // 2)  # no task has it
    assert ids[3] < between < ids[2]

    async def after(position: TaskPosition) -> list[uuid.UUID]:
        page = await tasks_of(repos, owner).list(TaskQuery(limit=100, after=position), now())
        assert page.total == 8
        return [t.id for t in page.tasks]

    assert await after(TaskPosition(T0, ids[2])) == [*ids[3:], older.id]
    assert await after(TaskPosition(T0, between)) == [*ids[3:], older.id]
    assert await after(TaskPosition(T0, uuid.UUID(int=2**128 - 1))) == [*ids, older.id]
    assert await after(TaskPosition(T0, uuid.UUID(int=0))) == [older.id]
    assert await after(position(newer)) == [*ids, older.id]
    assert await after(position(older)) == []
    assert await after(TaskPosition(T0 + timedelta(days=1), uuid.UUID(int=0))) == [
        newer.id,
        *ids,
        older.id,
    ]
    # The same instant written in another time zone is the same position.
    kathmandu = timezone(timedelta(hours=5, minutes=45))
    assert await after(TaskPosition(T0.astimezone(kathmandu), ids[2])) == [*ids[3:], older.id]


async def test_a_position_past_the_last_task_gives_an_empty_last_page(
    repos: Repositories,
) -> None:
    owners, tasks = await twelve_tasks_with_ties(repos)
    oldest = position(min(tasks, key=stamp))

    page = await owners.list(TaskQuery(limit=5, after=oldest), now())

    assert list(page.tasks) == []
    assert (page.total, page.has_more, page.next_position(NEWEST)) == (12, False, None)


async def test_after_and_offset_together_skip_offset_tasks_past_the_position(
    repos: Repositories,
) -> None:
    owners, tasks = await twelve_tasks_with_ties(repos)
    order = matching(tasks, None)

    page = await owners.list(TaskQuery(limit=4, offset=3, after=position(order[1])), now())
    last = await owners.list(TaskQuery(limit=4, offset=2, after=position(order[5])), now())

    assert [t.id for t in page.tasks] == [t.id for t in order[5:9]]
    assert (page.total, page.has_more, page.next_position(NEWEST)) == (12, True, position(order[8]))
    assert [t.id for t in last.tasks] == [t.id for t in order[8:12]]
    assert (last.total, last.has_more, last.next_position(NEWEST)) == (12, False, None)


async def test_has_more_is_false_on_a_page_that_ends_exactly_at_the_last_task(
    repos: Repositories,
) -> None:
    owners, tasks = await twelve_tasks_with_ties(repos)
    order = matching(tasks, None)

    exact = await owners.list(TaskQuery(limit=12), now())
    one_short = await owners.list(TaskQuery(limit=11), now())
    exact_after = await owners.list(TaskQuery(limit=10, after=position(order[1])), now())
    short_after = await owners.list(TaskQuery(limit=9, after=position(order[1])), now())

    assert (len(exact.tasks), exact.has_more, exact.next_position(NEWEST)) == (12, False, None)
    assert (len(one_short.tasks), one_short.has_more) == (11, True)
    assert one_short.next_position(NEWEST) == position(order[10])
    assert (len(exact_after.tasks), exact_after.has_more, exact_after.next_position(NEWEST)) == (
        10,
        False,
        None,
    )
    assert (len(short_after.tasks), short_after.has_more) == (9, True)
    assert short_after.next_position(NEWEST) == position(order[10])


# --- callers admitted in the statement that does the work --------------------------------------

ISSUED = T0 + timedelta(hours=1)


def bearer_of(
    user: User,
    *,
    key: str | None = "live",
    issued_at: datetime = ISSUED,
    generation: int | None = 0,
) -> Caller:
    """The user as the holder of a token (by default "live", of generation 0)."""
    return Caller(user.id, key, issued_at, generation)


@dataclass(frozen=True, slots=True)
class Scene:
    owner: User
    task: Task
    """The owner's one stored task."""
    other: User
    theirs: Task
    """The other user's one stored task."""
    new_id: uuid.UUID
    """No stored task has it: the id of the task an operation adds, or asks for."""


async def scene(repos: Repositories) -> Scene:
    owner = await repos.users.add(a_user())
    other = await repos.users.add(a_user("other@example.com"))
    return Scene(
        owner=owner,
        task=await tasks_of(repos, owner).add(a_task(owner, "Stored", description="as it was")),
        other=other,
        theirs=await tasks_of(repos, other).add(a_task(other, "Theirs", description="not yours")),
        new_id=uuid.uuid4(),
    )


# Each task operation, as the caller, on the owner's task: what it returns when admitted.
async def admit(repos: Repositories, scene: Scene, caller: Caller) -> object:
    await repos.tasks.for_caller(caller).admit()
    return None


async def add(repos: Repositories, scene: Scene, caller: Caller) -> object:
    # The caller's own new task, whoever the caller is.
    task = replace(a_task(scene.owner, "Added by the caller"), id=scene.new_id)
    return await repos.tasks.for_caller(caller).add(replace(task, owner_id=caller.user_id))


async def get(repos: Repositories, scene: Scene, caller: Caller) -> object:
    return await repos.tasks.for_caller(caller).get(scene.task.id)


async def get_for_update(repos: Repositories, scene: Scene, caller: Caller) -> object:
    async with repos.transactions.atomic():
        return await repos.tasks.for_caller(caller).get(scene.task.id, for_update=True)


async def list_all(repos: Repositories, scene: Scene, caller: Caller) -> object:
    page = await repos.tasks.for_caller(caller).list(TaskQuery(limit=5), now())
    return list(page.tasks), page.total


async def list_an_empty_page(repos: Repositories, scene: Scene, caller: Caller) -> object:
    page = await repos.tasks.for_caller(caller).list(TaskQuery(completed=True, limit=5), now())
    return list(page.tasks), page.total


async def update(repos: Repositories, scene: Scene, caller: Caller) -> object:
    changed = apply_changes(scene.task, TaskChanges(title="Changed"), now())
    return (await repos.tasks.for_caller(caller).update(changed)) is not None


async def update_if_unchanged(repos: Repositories, scene: Scene, caller: Caller) -> object:
    changed = apply_changes(scene.task, TaskChanges(completed=True), now())
    updated = await repos.tasks.for_caller(caller).update(
        changed, expected_versions=[scene.task.updated_at]
    )
    return updated is not None


async def delete(repos: Repositories, scene: Scene, caller: Caller) -> object:
    return await repos.tasks.for_caller(caller).delete(scene.task.id)


async def delete_if_unchanged(repos: Repositories, scene: Scene, caller: Caller) -> object:
    return await repos.tasks.for_caller(caller).delete(
        scene.task.id, expected_versions=[scene.task.updated_at]
    )


OPERATIONS = [
    admit,
    add,
    get,
    get_for_update,
    list_all,
    list_an_empty_page,
    update,
    update_if_unchanged,
    delete,
    delete_if_unchanged,
]
Operation = Callable[[Repositories, Scene, Caller], Awaitable[object]]


# Each task operation, as the caller, on the other user's task or on an id no task has.
async def add_theirs(repos: Repositories, scene: Scene, caller: Caller) -> object:
    planted = replace(a_task(scene.other, "Planted"), id=scene.new_id)
    return await repos.tasks.for_caller(caller).add(planted)


async def get_theirs(repos: Repositories, scene: Scene, caller: Caller) -> object:
    return await repos.tasks.for_caller(caller).get(scene.theirs.id)


async def get_theirs_for_update(repos: Repositories, scene: Scene, caller: Caller) -> object:
    async with repos.transactions.atomic():
        return await repos.tasks.for_caller(caller).get(scene.theirs.id, for_update=True)


async def get_an_unknown_id(repos: Repositories, scene: Scene, caller: Caller) -> object:
    return await repos.tasks.for_caller(caller).get(scene.new_id)


async def update_theirs(repos: Repositories, scene: Scene, caller: Caller) -> object:
    changed = apply_changes(scene.theirs, TaskChanges(title="Taken over"), now())
    return await repos.tasks.for_caller(caller).update(changed)


async def update_theirs_if_unchanged(repos: Repositories, scene: Scene, caller: Caller) -> object:
    changed = apply_changes(scene.theirs, TaskChanges(completed=True), now())
    return await repos.tasks.for_caller(caller).update(
        changed, expected_versions=[scene.theirs.updated_at]
    )


async def update_theirs_as_the_callers(repos: Repositories, scene: Scene, caller: Caller) -> object:
    changed = apply_changes(scene.theirs, TaskChanges(title="Mine now"), now())
    return await repos.tasks.for_caller(caller).update(replace(changed, owner_id=caller.user_id))


async def delete_theirs(repos: Repositories, scene: Scene, caller: Caller) -> object:
    return await repos.tasks.for_caller(caller).delete(scene.theirs.id)


async def delete_theirs_if_unchanged(repos: Repositories, scene: Scene, caller: Caller) -> object:
    return await repos.tasks.for_caller(caller).delete(
        scene.theirs.id, expected_versions=[scene.theirs.updated_at]
    )


FOREIGN_OPERATIONS = [
    add_theirs,
    get_theirs,
    get_theirs_for_update,
    get_an_unknown_id,
    update_theirs,
    update_theirs_if_unchanged,
    update_theirs_as_the_callers,
    delete_theirs,
    delete_theirs_if_unchanged,
]


async def logged_out(repos: Repositories, scene: Scene) -> Caller:
    await repos.revocations.revoke("live", datetime.now(UTC) + timedelta(hours=1))
    return bearer_of(scene.owner)


async def cut_off(repos: Repositories, scene: Scene) -> Caller:
    await repos.users.cut_off_tokens(scene.owner.id, ISSUED - timedelta(minutes=1))
    return bearer_of(scene.owner)  # generation 0: one cut-off ago


async def cut_off_in_its_second(repos: Repositories, scene: Scene) -> Caller:
    # A token without a generation, issued (in whole seconds) in the second of the cut-off.
    await repos.users.cut_off_tokens(scene.owner.id, ISSUED + timedelta(microseconds=500_000))
    return bearer_of(scene.owner, generation=None)


async def cut_off_at_its_issue(repos: Repositories, scene: Scene) -> Caller:
    await repos.users.cut_off_tokens(scene.owner.id, ISSUED)
    return bearer_of(scene.owner, generation=None)


async def deleted(repos: Repositories, scene: Scene) -> Caller:
    await repos.users.delete(scene.owner.id)
    return bearer_of(scene.owner)


async def never_existed(repos: Repositories, scene: Scene) -> Caller:
    return bearer_of(a_user("nobody@example.com"))


async def logged_out_and_deleted(repos: Repositories, scene: Scene) -> Caller:
    await logged_out(repos, scene)
    return await deleted(repos, scene)


Refusal = Callable[[Repositories, Scene], Awaitable[Caller]]
REFUSALS: list[tuple[Refusal, type[Exception]]] = [
    (logged_out, TokenRevoked),
    (cut_off, TokenRevoked),
    (cut_off_in_its_second, TokenRevoked),
    (cut_off_at_its_issue, TokenRevoked),
    (deleted, UserNotFound),
    (never_existed, UserNotFound),
    (logged_out_and_deleted, TokenRevoked),  # the revocation is reported first
]


async def stored_state(repos: Repositories, scene: Scene) -> object:
    """Whatever an operation could have changed, as the owner and the other user see it, each
    through a caller that no refusal of the scenes refuses (unless the user is gone)."""
    views = []
    for user in (scene.owner, scene.other):
        tasks = tasks_of(repos, user)
        views += [
            await outcome(tasks.list(TaskQuery(limit=10), now())),
            # To a user, a task that is someone else's is TaskAccessDenied: stored all the same.
            *[await outcome(tasks.get(i)) for i in (scene.task.id, scene.theirs.id, scene.new_id)],
        ]
    return views


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: op.__name__)
@pytest.mark.parametrize(("refusal", "error"), REFUSALS, ids=lambda r: getattr(r, "__name__", ""))
async def test_a_refused_caller_is_told_why_and_reads_and_writes_nothing(
    repos: Repositories, operation: Operation, refusal: Refusal, error: type[Exception]
) -> None:
    the_scene = await scene(repos)
    caller = await refusal(repos, the_scene)
    before = await stored_state(repos, the_scene)

    with pytest.raises(error):
        await operation(repos, the_scene, caller)

    assert await stored_state(repos, the_scene) == before


@pytest.mark.parametrize("operation", FOREIGN_OPERATIONS, ids=lambda op: op.__name__)
@pytest.mark.parametrize(("refusal", "error"), REFUSALS, ids=lambda r: getattr(r, "__name__", ""))
async def test_a_refused_caller_learns_nothing_of_another_users_task_or_an_unknown_id(
    repos: Repositories,
    operation: Operation,
    refusal: Refusal,
    error: type[Exception],
) -> None:
    # Told why it is refused, as for its own tasks: not that the task is someone else's, nor
    # that no task has the id.
    the_scene = await scene(repos)
    caller = await refusal(repos, the_scene)
    before = await stored_state(repos, the_scene)

    with pytest.raises(error):
        await operation(repos, the_scene, caller)

    assert await stored_state(repos, the_scene) == before


async def current_generation(repos: Repositories, scene: Scene) -> Caller:
    return bearer_of(scene.owner)


async def after_a_cut_off(repos: Repositories, scene: Scene) -> Caller:
    cut = await repos.users.cut_off_tokens(scene.owner.id, ISSUED)
    assert cut is not None
    return bearer_of(scene.owner, generation=cut.token_generation)


async def issued_after_a_cut_off(repos: Repositories, scene: Scene) -> Caller:
    await repos.users.cut_off_tokens(scene.owner.id, ISSUED - timedelta(microseconds=1))
    return bearer_of(scene.owner, generation=None)


async def another_token_logged_out(repos: Repositories, scene: Scene) -> Caller:
    await repos.revocations.revoke("other", datetime.now(UTC) + timedelta(hours=1))
    return bearer_of(scene.owner)


async def without_a_token(repos: Repositories, scene: Scene) -> Caller:
    return bearer_of(scene.owner, key=None)


ADMISSIONS = [
    current_generation,
    after_a_cut_off,
    issued_after_a_cut_off,
    another_token_logged_out,
    without_a_token,
]


def expected_of(operation: Operation, scene: Scene) -> object:
    if operation is admit:
        return None
    if operation in (get, get_for_update):
        return scene.task
    if operation is list_all:
        return [scene.task], 1
    if operation is list_an_empty_page:
        return [], 0
    return True  # updated, deleted


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: op.__name__)
@pytest.mark.parametrize("admission", ADMISSIONS, ids=lambda a: a.__name__)
async def test_an_admitted_caller_gets_the_work_done(
    repos: Repositories, operation: Operation, admission: Refusal
) -> None:
    the_scene = await scene(repos)
    caller = await admission(repos, the_scene)

    result = await operation(repos, the_scene, caller)

    owners = tasks_of(repos, the_scene.owner)
    if operation is add:
        assert isinstance(result, Task)
        assert result.owner_id == the_scene.owner.id
        assert await owners.get(result.id) == result
        return
    assert result == expected_of(operation, the_scene)
    if operation in (delete, delete_if_unchanged):
        assert await owners.get(the_scene.task.id) is None
    # The other user's task is never touched.
    assert await tasks_of(repos, the_scene.other).get(the_scene.theirs.id) == the_scene.theirs


async def test_a_page_is_the_same_whichever_admitted_caller_of_the_owner_asks(
    repos: Repositories,
) -> None:
    owner = await repos.users.add(a_user())
    other = await repos.users.add(a_user("other@example.com"))
    everything = [
        a_task(owner, f"t{n}", completed=n % 3 == 0, at=T0 + timedelta(seconds=n % 4))
        for n in range(9)
    ]
    await add_in_random_order(repos, [*everything, a_task(other, "not mine")])
    await repos.revocations.revoke("other", datetime.now(UTC) + timedelta(hours=1))
    callers = [
        caller_of(owner),
        bearer_of(owner),
        bearer_of(owner, generation=None),
        bearer_of(owner, key=None),
    ]

    for completed in (None, True, False):
        selected = [t.id for t in matching(everything, completed)]
        for limit, offset in ((2, 0), (4, 3), (20, 0), (3, 8)):
            query = TaskQuery(completed=completed, limit=limit, offset=offset)
            pages = [await repos.tasks.for_caller(caller).list(query, now()) for caller in callers]
            context = f"completed={completed} limit={limit} offset={offset}"
            assert [t.id for t in pages[0].tasks] == selected[offset : offset + limit], context
            assert pages[0].total == len(selected), context
            assert all(page == pages[0] for page in pages), context
            after = pages[0].next_position(NEWEST)
            if after is not None:
                query = TaskQuery(completed=completed, limit=limit, after=after)
                pages = [
                    await repos.tasks.for_caller(caller).list(query, now()) for caller in callers
                ]
                assert all(page == pages[0] for page in pages), context


# --- revoked tokens and the users tokens name ---------------------------------------------------


async def is_revoked(repos: Repositories, token_key: str) -> bool:
    return (await repos.token_subjects.find(uuid.uuid4(), token_key)).token_revoked


async def test_a_token_subject_is_the_stored_user_and_whether_the_token_was_revoked(
    repos: Repositories,
) -> None:
    user = await repos.users.add(replace(a_user(), tokens_valid_after=T0))
    await repos.revocations.revoke("logged-out", datetime.now(UTC) + timedelta(hours=1))

    live = await repos.token_subjects.find(user.id, "live")
    logged_out = await repos.token_subjects.find(user.id, "logged-out")

    assert (live.user, live.token_revoked) == (user, False)
    assert (logged_out.user, logged_out.token_revoked) == (user, True)


async def test_a_token_subject_of_an_unknown_or_deleted_user_has_no_user(
    repos: Repositories,
) -> None:
    user = await repos.users.add(a_user())
    await repos.revocations.revoke("logged-out", datetime.now(UTC) + timedelta(hours=1))
    await repos.users.delete(user.id)

    gone = await repos.token_subjects.find(user.id, "live")
    never = await repos.token_subjects.find(uuid.uuid4(), "logged-out")

    assert (gone.user, gone.token_revoked) == (None, False)
    assert (never.user, never.token_revoked) == (None, True)


async def test_a_revoked_token_is_revoked_and_others_are_not(repos: Repositories) -> None:
    expires = datetime.now(UTC) + timedelta(hours=24)

    await repos.revocations.revoke("token-a", expires)

    assert await is_revoked(repos, "token-a") is True
    assert await is_revoked(repos, "token-b") is False


async def test_revoking_a_token_twice_is_harmless(repos: Repositories) -> None:
    expires = datetime.now(UTC) + timedelta(hours=24)
    await repos.revocations.revoke("token-a", expires)

    await repos.revocations.revoke("token-a", expires)
    await repos.revocations.revoke("token-a", expires + timedelta(seconds=1))

    assert await is_revoked(repos, "token-a") is True


async def test_revoking_a_token_forgets_no_other_token_even_an_expired_one(
    repos: Repositories,
) -> None:
    now = datetime.now(UTC)
    await repos.revocations.revoke("expired", now - timedelta(hours=1))
    await repos.revocations.revoke("live", now + timedelta(hours=1))

    await repos.revocations.revoke("another", now + timedelta(hours=1))

    # Forgetting is the purge's work, never a logout's.
    assert await is_revoked(repos, "expired") is True
    assert await is_revoked(repos, "live") is True
    assert await is_revoked(repos, "another") is True


async def test_purging_forgets_the_tokens_that_have_expired_and_counts_them(
    repos: Repositories,
) -> None:
    now = datetime.now(UTC)
    for n in range(3):
        await repos.revocations.revoke(f"expired-{n}", now - timedelta(minutes=n + 1))
    await repos.revocations.revoke("barely-expired", now - MICROSECOND)
    await repos.revocations.revoke("live", now + MICROSECOND)
    await repos.revocations.revoke("long-lived", now + timedelta(days=1))

    assert await repos.revocations.purge_expired(now) == 4

    for key in ("expired-0", "expired-1", "expired-2", "barely-expired"):
        assert await is_revoked(repos, key) is False, key
    assert await is_revoked(repos, "live") is True
    assert await is_revoked(repos, "long-lived") is True


async def test_purging_again_finds_nothing_more_to_forget(repos: Repositories) -> None:
    now = datetime.now(UTC)
    await repos.revocations.revoke("expired", now - timedelta(hours=1))
    await repos.revocations.revoke("live", now + timedelta(hours=1))
    assert await repos.revocations.purge_expired(now) == 1

    assert await repos.revocations.purge_expired(now) == 0
    assert await repos.revocations.purge_expired(now + timedelta(minutes=59)) == 0

    assert await is_revoked(repos, "live") is True


# --- cutting off a user's tokens ---------------------------------------------------------------


async def test_a_user_added_with_a_token_cutoff_comes_back_with_it(repos: Repositories) -> None:
    user = replace(a_user(), tokens_valid_after=T0 + timedelta(microseconds=3), token_generation=7)

    assert await repos.users.add(user) == user

    found = await repos.users.get(user.id)
    assert found == user
    assert found is not None
    assert found.tokens_valid_after is not None
    assert_utc(found.tokens_valid_after)


async def test_a_new_user_is_in_token_generation_zero_without_a_cutoff(
    repos: Repositories,
) -> None:
    user = await repos.users.add(a_user())

    assert (user.token_generation, user.tokens_valid_after) == (0, None)


async def test_a_cutoff_starts_a_new_generation_and_returns_the_stored_user(
    repos: Repositories,
) -> None:
    user = await repos.users.add(a_user())
    cutoff = T0 + timedelta(minutes=5, microseconds=654321)

    cut = await repos.users.cut_off_tokens(user.id, cutoff)

    assert cut is not None
    assert (cut.token_generation, cut.tokens_valid_after) == (1, cutoff)
    assert (cut.id, cut.email, cut.password_hash, cut.created_at) == (
        user.id,
        user.email,
        user.password_hash,
        T0,
    )
    assert cut.updated_at > user.updated_at
    assert_utc(cut.updated_at)
    assert await repos.users.get(user.id) == cut
    assert await repos.users.get_by_email(user.email) == cut
    again = await repos.users.cut_off_tokens(user.id, cutoff)
    assert again is not None
    assert again.token_generation == 2


async def test_a_cutoff_with_a_password_hash_stores_both_in_one_write(
    repos: Repositories,
) -> None:
    user = await repos.users.add(a_user())
    cutoff = T0 + timedelta(minutes=5)

    changed = await repos.users.cut_off_tokens(user.id, cutoff, password_hash="$2b$04$a-new-hash")

    assert changed is not None
    assert (changed.password_hash, changed.token_generation, changed.tokens_valid_after) == (
        "$2b$04$a-new-hash",
        1,
        cutoff,
    )
    assert await repos.users.get(user.id) == changed


async def test_the_token_cutoff_comes_back_timezone_aware_utc_to_the_microsecond(
    repos: Repositories,
) -> None:
    user = await repos.users.add(a_user())
    cutoff = datetime(2024, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)

    cut = await repos.users.cut_off_tokens(user.id, cutoff)
    found = await repos.users.get(user.id)

    for stored in (cut, found):
        assert stored is not None
        assert stored.tokens_valid_after == cutoff
        assert stored.tokens_valid_after is not None
        assert_utc(stored.tokens_valid_after)
        # A token minted elsewhere is accepted only when issued strictly after the cutoff.
        assert not stored.accepts_token(cutoff, None)
        assert stored.accepts_token(cutoff + timedelta(microseconds=1), None)


async def test_the_token_cutoff_never_moves_back(repos: Repositories) -> None:
    user = await repos.users.add(a_user())
    later, earlier = T0 + timedelta(hours=1), T0

    await repos.users.cut_off_tokens(user.id, later)
    cut = await repos.users.cut_off_tokens(user.id, earlier)

    assert cut is not None
    assert (cut.tokens_valid_after, cut.token_generation) == (later, 2)


async def test_concurrent_cutoffs_each_start_a_generation(repos: Repositories) -> None:
    user = await repos.users.add(a_user())

    results = await asyncio.gather(*(repos.users.cut_off_tokens(user.id, T0) for _ in range(8)))

    assert sorted(r.token_generation for r in results if r is not None) == list(range(1, 9))
    found = await repos.users.get(user.id)
    assert found is not None
    assert found.token_generation == 8


async def test_a_cutoff_never_changes_other_users(repos: Repositories) -> None:
    alice = await repos.users.add(a_user("alice@example.com"))
    bob = await repos.users.add(a_user("bob@example.com"))

    await repos.users.cut_off_tokens(alice.id, T0, password_hash="$2b$04$changed")

    assert await repos.users.get(bob.id) == bob


async def test_a_cutoff_of_a_user_that_is_gone_is_none_and_stores_nothing(
    repos: Repositories,
) -> None:
    deleted = await repos.users.add(a_user("gone@example.com"))
    await repos.users.delete(deleted.id)
    never_added = a_user("never@example.com")

    assert await repos.users.cut_off_tokens(deleted.id, T0) is None
    assert await repos.users.cut_off_tokens(never_added.id, T0, password_hash="x") is None
    assert await repos.users.get(deleted.id) is None
    assert await repos.users.get(never_added.id) is None


# --- failed logins -----------------------------------------------------------------------------

WINDOW = timedelta(minutes=15)


async def test_failed_logins_count_up_within_the_window_from_the_first_failure(
    repos: Repositories,
) -> None:
    first = await repos.logins.record_failed_login("key-a", T0, WINDOW)
    second = await repos.logins.record_failed_login("key-a", T0 + timedelta(minutes=1), WINDOW)
    # Still inside: the window is [first failure, first failure + window).
    third = await repos.logins.record_failed_login(
        "key-a", T0 + WINDOW - timedelta(microseconds=1), WINDOW
    )

    assert [first, second, third] == [FailedLogins(n, T0) for n in (1, 2, 3)]
    for recorded in (first, second, third):
        assert_utc(recorded.window_started_at)
    assert await repos.failed_logins("key-a") == FailedLogins(3, T0)


async def test_a_failure_once_the_window_has_passed_starts_a_new_window_at_one(
    repos: Repositories,
) -> None:
    for minutes in range(3):
        await repos.logins.record_failed_login("key-a", T0 + timedelta(minutes=minutes), WINDOW)
    later = T0 + WINDOW  # the window is over at exactly its end

    restarted = await repos.logins.record_failed_login("key-a", later, WINDOW)
    again = await repos.logins.record_failed_login("key-a", later + timedelta(seconds=1), WINDOW)

    assert restarted == FailedLogins(1, later)
    assert again == FailedLogins(2, later)
    assert await repos.failed_logins("key-a") == FailedLogins(2, later)


async def test_failed_logins_of_an_unknown_key_are_none(repos: Repositories) -> None:
    await repos.logins.record_failed_login("key-a", T0, WINDOW)

    assert await repos.failed_logins("key-b") is None


async def test_clearing_failed_logins_forgets_them_and_the_next_failure_counts_from_one(
    repos: Repositories,
) -> None:
    for seconds in range(3):
        await repos.logins.record_failed_login("key-a", T0 + timedelta(seconds=seconds), WINDOW)

    await repos.logins.clear_failed_logins("key-a")
    await repos.logins.clear_failed_logins("never-failed")

    assert await repos.failed_logins("key-a") is None
    next_time = T0 + timedelta(minutes=1)
    assert await repos.logins.record_failed_login("key-a", next_time, WINDOW) == FailedLogins(
        1, next_time
    )


async def test_failed_logins_of_different_keys_are_independent(repos: Repositories) -> None:
    later = T0 + timedelta(minutes=2)
    await repos.logins.record_failed_login("key-a", T0, WINDOW)
    await repos.logins.record_failed_login("key-a", T0 + timedelta(minutes=1), WINDOW)

    assert await repos.logins.record_failed_login("key-b", later, WINDOW) == FailedLogins(1, later)
    assert await repos.failed_logins("key-a") == FailedLogins(2, T0)

    await repos.logins.clear_failed_logins("key-a")

    assert await repos.failed_logins("key-a") is None
    assert await repos.failed_logins("key-b") == FailedLogins(1, later)


async def test_recording_a_failure_forgets_no_other_key_even_one_whose_window_is_over(
    repos: Repositories,
) -> None:
    await repos.logins.record_failed_login("expired", T0, WINDOW)
    await repos.logins.record_failed_login("live", T0 + timedelta(minutes=1), WINDOW)
    now = T0 + WINDOW + timedelta(hours=1)  # both windows are long over

    await repos.logins.record_failed_login("other", now, WINDOW)

    # Forgetting is the purge's work, never a login's.
    assert await repos.failed_logins("expired") == FailedLogins(1, T0)
    assert await repos.failed_logins("live") == FailedLogins(1, T0 + timedelta(minutes=1))
    assert await repos.failed_logins("other") == FailedLogins(1, now)


async def test_purging_forgets_failed_logins_whose_window_started_before_the_moment(
    repos: Repositories,
) -> None:
    await repos.logins.record_failed_login("old", T0 - timedelta(hours=1), WINDOW)
    await repos.logins.record_failed_login("old", T0 - timedelta(minutes=59), WINDOW)
    await repos.logins.record_failed_login("barely-old", T0 - MICROSECOND, WINDOW)
    await repos.logins.record_failed_login("starting-then", T0, WINDOW)
    await repos.logins.record_failed_login("young", T0 + timedelta(minutes=1), WINDOW)
    an_hour_ago = T0.replace(second=0, microsecond=0) - timedelta(hours=1)
    await repos.logins.count_attempt("198.51.100.7", an_hour_ago)

    purged = await repos.logins.purge_expired(
        failures_started_before=T0, attempts_started_before=an_hour_ago
    )

    assert purged == 2  # a key each, whatever its count; the attempt window starts then
    assert await repos.failed_logins("old") is None
    assert await repos.failed_logins("barely-old") is None
    assert await repos.failed_logins("starting-then") == FailedLogins(1, T0)
    assert await repos.failed_logins("young") == FailedLogins(1, T0 + timedelta(minutes=1))
    assert await repos.logins.count_attempt("198.51.100.7", an_hour_ago) == 2


async def test_a_key_purged_counts_its_next_failure_from_one(repos: Repositories) -> None:
    for minutes in range(3):
        await repos.logins.record_failed_login("key-a", T0 + timedelta(minutes=minutes), WINDOW)

    assert (
        await repos.logins.purge_expired(
            failures_started_before=T0 + MICROSECOND, attempts_started_before=T0
        )
        == 1
    )

    # Within what would have been the old window: it is gone, not merely over.
    later = T0 + timedelta(minutes=5)
    assert await repos.logins.record_failed_login("key-a", later, WINDOW) == FailedLogins(1, later)


async def test_releasing_a_failed_login_takes_one_back_and_keeps_the_window(
    repos: Repositories,
) -> None:
    for minutes in range(3):
        await repos.logins.record_failed_login("key-a", T0 + timedelta(minutes=minutes), WINDOW)

    await repos.logins.release_failed_login("key-a")
    assert await repos.failed_logins("key-a") == FailedLogins(2, T0)
    await repos.logins.release_failed_login("key-a")

    assert await repos.failed_logins("key-a") == FailedLogins(1, T0)
    # The next failure counts on from there, in the same window.
    assert await repos.logins.record_failed_login(
        "key-a", T0 + timedelta(minutes=5), WINDOW
    ) == FailedLogins(2, T0)


async def test_releasing_the_only_failed_login_forgets_the_key(repos: Repositories) -> None:
    await repos.logins.record_failed_login("key-a", T0, WINDOW)

    await repos.logins.release_failed_login("key-a")

    assert await repos.failed_logins("key-a") is None
    # Gone, not left at zero: the next failure opens a window of its own.
    later = T0 + timedelta(minutes=1)
    assert await repos.logins.record_failed_login("key-a", later, WINDOW) == FailedLogins(1, later)


async def test_releasing_a_failed_login_of_an_unknown_key_does_nothing(
    repos: Repositories,
) -> None:
    await repos.logins.record_failed_login("key-a", T0, WINDOW)
    await repos.logins.record_failed_login("key-a", T0 + timedelta(seconds=1), WINDOW)

    await repos.logins.release_failed_login("never-failed")

    assert await repos.failed_logins("never-failed") is None
    assert await repos.failed_logins("key-a") == FailedLogins(2, T0)
    # Nor does releasing more than was recorded: the key is gone, and stays gone.
    for _ in range(3):
        await repos.logins.release_failed_login("key-a")
    assert await repos.failed_logins("key-a") is None


async def test_releasing_a_key_leaves_the_other_keys_alone(repos: Repositories) -> None:
    await repos.logins.record_failed_login("key-a", T0, WINDOW)
    await repos.logins.record_failed_login("key-b", T0, WINDOW)
    await repos.logins.record_failed_login("key-b", T0, WINDOW)

    await repos.logins.release_failed_login("key-a")
    await repos.logins.release_failed_login("key-b")

    assert await repos.failed_logins("key-a") is None
    assert await repos.failed_logins("key-b") == FailedLogins(1, T0)


async def test_simultaneous_releases_each_take_one_failure_back(repos: Repositories) -> None:
    # Attempts abandoned at the same moment (the hasher or the database overloaded for all of
    # them) give back one failure each: none is lost, down to the deletion of the last one.
    for _ in range(5):
        for _ in range(8):
            await repos.logins.record_failed_login("key-a", T0, WINDOW)
        await repos.logins.record_failed_login("key-b", T0, WINDOW)
        await repos.logins.record_failed_login("key-b", T0, WINDOW)

        await asyncio.gather(
            *(repos.logins.release_failed_login("key-a") for _ in range(8)),
            repos.logins.release_failed_login("key-b"),
        )

        assert await repos.failed_logins("key-a") is None
        assert await repos.failed_logins("key-b") == FailedLogins(1, T0)
        await repos.logins.clear_failed_logins("key-b")


# --- attempts per client -----------------------------------------------------------------------

MINUTE = T0.replace(second=0, microsecond=0)


async def test_attempts_are_counted_per_client_within_a_window(repos: Repositories) -> None:
    counts = [await repos.logins.count_attempt("198.51.100.7", MINUTE) for _ in range(3)]

    assert counts == [1, 2, 3]


async def test_attempts_in_a_new_window_count_from_one(repos: Repositories) -> None:
    next_minute = MINUTE + timedelta(minutes=1)
    for _ in range(3):
        await repos.logins.count_attempt("198.51.100.7", MINUTE)

    assert await repos.logins.count_attempt("198.51.100.7", next_minute) == 1
    assert await repos.logins.count_attempt("198.51.100.7", next_minute) == 2


async def test_attempts_of_different_clients_are_independent(repos: Repositories) -> None:
    await repos.logins.count_attempt("198.51.100.7", MINUTE)
    await repos.logins.count_attempt("198.51.100.7", MINUTE)

    assert await repos.logins.count_attempt("2001:db8::1", MINUTE) == 1
    assert await repos.logins.count_attempt("198.51.100.7", MINUTE) == 3
    assert await repos.logins.count_attempt("2001:db8::1", MINUTE) == 2


async def test_counting_in_a_new_window_forgets_no_older_window(repos: Repositories) -> None:
    for _ in range(3):
        await repos.logins.count_attempt("198.51.100.7", MINUTE)
    await repos.logins.count_attempt("2001:db8::1", MINUTE)

    await repos.logins.count_attempt("203.0.113.9", MINUTE + timedelta(minutes=1))

    # Forgetting is the purge's work, never a login's: the old window counts on.
    assert await repos.logins.count_attempt("198.51.100.7", MINUTE) == 4
    assert await repos.logins.count_attempt("2001:db8::1", MINUTE) == 2


async def test_purging_forgets_attempt_windows_that_started_before_the_moment(
    repos: Repositories,
) -> None:
    earlier, later = MINUTE - timedelta(minutes=1), MINUTE + timedelta(minutes=1)
    for _ in range(3):
        await repos.logins.count_attempt("198.51.100.7", earlier)
    await repos.logins.count_attempt("2001:db8::1", earlier)
    await repos.logins.count_attempt("198.51.100.7", MINUTE)
    await repos.logins.count_attempt("203.0.113.9", later)
    await repos.logins.record_failed_login("key-a", T0 - timedelta(hours=1), WINDOW)

    purged = await repos.logins.purge_expired(
        failures_started_before=T0 - timedelta(days=1), attempts_started_before=MINUTE
    )

    assert purged == 2  # a window each of the two clients, whatever its count
    assert await repos.logins.count_attempt("198.51.100.7", earlier) == 1
    assert await repos.logins.count_attempt("2001:db8::1", earlier) == 1
    assert await repos.logins.count_attempt("198.51.100.7", MINUTE) == 2
    assert await repos.logins.count_attempt("203.0.113.9", later) == 2
    assert await repos.failed_logins("key-a") == FailedLogins(1, T0 - timedelta(hours=1))


async def test_one_purge_forgets_failed_logins_and_attempts_and_counts_both(
    repos: Repositories,
) -> None:
    await repos.logins.record_failed_login("old-a", T0 - timedelta(hours=2), WINDOW)
    await repos.logins.record_failed_login("old-b", T0 - timedelta(hours=1), WINDOW)
    await repos.logins.record_failed_login("young", T0, WINDOW)
    await repos.logins.count_attempt("198.51.100.7", MINUTE - timedelta(minutes=2))
    await repos.logins.count_attempt("2001:db8::1", MINUTE - timedelta(minutes=1))
    await repos.logins.count_attempt("203.0.113.9", MINUTE - timedelta(minutes=1))
    await repos.logins.count_attempt("203.0.113.9", MINUTE)

    purged = await repos.logins.purge_expired(
        failures_started_before=T0, attempts_started_before=MINUTE
    )

    assert purged == 2 + 3
    assert await repos.failed_logins("old-a") is None
    assert await repos.failed_logins("old-b") is None
    assert await repos.failed_logins("young") == FailedLogins(1, T0)
    assert await repos.logins.count_attempt("203.0.113.9", MINUTE) == 2
    assert (
        await repos.logins.purge_expired(failures_started_before=T0, attempts_started_before=MINUTE)
        == 0
    )


# --- idempotency keys --------------------------------------------------------------------------

TTL = timedelta(hours=24)


async def recorded_task(repos: Repositories, owner: User) -> Task:
    """A stored task whose every field differs from a fresh task's defaults."""
    task = replace(
        a_task(owner, "Ünïcödé ✓ title", description='a "quoted"\ndescription', completed=True),
        updated_at=T0 + timedelta(minutes=1, microseconds=7),
    )
    return await tasks_of(repos, owner).add(task)


async def test_the_first_claim_of_a_key_is_none_and_a_second_sees_the_pending_first(
    repos: Repositories,
) -> None:
    alice = await repos.users.add(a_user())

    first = await repos.idempotency.claim(alice.id, "key-1", "fp-1", T0, TTL)
    second = await repos.idempotency.claim(alice.id, "key-1", "fp-1", T0 + MICROSECOND, TTL)
    # Another request under the same key: the first request's fingerprint comes back.
    third = await repos.idempotency.claim(alice.id, "key-1", "fp-2", T0 + timedelta(hours=1), TTL)

    assert first is None
    assert second == EarlierCreation("fp-1", None)
    assert third == EarlierCreation("fp-1", None)


async def test_a_claim_after_the_record_returns_the_recorded_task(repos: Repositories) -> None:
    alice = await repos.users.add(a_user())
    task = await recorded_task(repos, alice)
    assert await repos.idempotency.claim(alice.id, "key-1", "fp-1", T0, TTL) is None

    await repos.idempotency.record(alice.id, "key-1", task)
    earlier = await repos.idempotency.claim(alice.id, "key-1", "fp-2", T0 + timedelta(hours=1), TTL)

    assert earlier is not None
    assert earlier.fingerprint == "fp-1"
    assert earlier.task == task
    assert earlier.task is not None
    for field in ("id", "owner_id", "title", "description", "completed"):
        assert getattr(earlier.task, field) == getattr(task, field), field
    assert (earlier.task.created_at, earlier.task.updated_at) == (task.created_at, task.updated_at)
    assert_utc(earlier.task.created_at)
    assert_utc(earlier.task.updated_at)


async def test_a_recorded_task_without_description_or_with_an_empty_one_keeps_it(
    repos: Repositories,
) -> None:
    alice = await repos.users.add(a_user())
    for description in (None, ""):
        key = f"key-{description!r}"
        task = await tasks_of(repos, alice).add(a_task(alice, description=description))
        await repos.idempotency.claim(alice.id, key, "fp", T0, TTL)

        await repos.idempotency.record(alice.id, key, task)

        earlier = await repos.idempotency.claim(alice.id, key, "fp", T0, TTL)
        assert earlier == EarlierCreation("fp", task)
        assert earlier.task is not None
        assert earlier.task.description == description
        assert type(earlier.task.description) is type(description)


async def test_keys_of_other_owners_and_other_keys_are_independent(repos: Repositories) -> None:
    alice = await repos.users.add(a_user("alice@example.com"))
    bob = await repos.users.add(a_user("bob@example.com"))
    alices = await recorded_task(repos, alice)

    assert await repos.idempotency.claim(alice.id, "shared", "fp-alice", T0, TTL) is None
    assert await repos.idempotency.claim(bob.id, "shared", "fp-bob", T0, TTL) is None
    assert await repos.idempotency.claim(alice.id, "other", "fp-other", T0, TTL) is None
    await repos.idempotency.record(alice.id, "shared", alices)

    later = T0 + timedelta(minutes=1)
    assert await repos.idempotency.claim(bob.id, "shared", "x", later, TTL) == EarlierCreation(
        "fp-bob", None
    )
    assert await repos.idempotency.claim(alice.id, "other", "x", later, TTL) == EarlierCreation(
        "fp-other", None
    )
    assert await repos.idempotency.claim(alice.id, "shared", "x", later, TTL) == EarlierCreation(
        "fp-alice", alices
    )
    assert await repos.idempotency.claim(bob.id, "other", "x", later, TTL) is None


async def test_a_claim_once_the_ttl_has_passed_starts_afresh(repos: Repositories) -> None:
    alice = await repos.users.add(a_user())
    task = await recorded_task(repos, alice)
    await repos.idempotency.claim(alice.id, "key-1", "fp-1", T0, TTL)
    await repos.idempotency.record(alice.id, "key-1", task)

    at_the_end = await repos.idempotency.claim(alice.id, "key-1", "fp-2", T0 + TTL, TTL)
    past_it = await repos.idempotency.claim(alice.id, "key-1", "fp-3", T0 + TTL + MICROSECOND, TTL)
    again = await repos.idempotency.claim(alice.id, "key-1", "fp-4", T0 + TTL + TTL, TTL)

    assert at_the_end == EarlierCreation("fp-1", task)  # still within the ttl
    assert past_it is None
    assert again == EarlierCreation("fp-3", None)  # the new claim, not the old task


async def test_an_expired_key_claimed_afresh_records_and_replays_the_new_creation(
    repos: Repositories,
) -> None:
    alice = await repos.users.add(a_user())
    old = await recorded_task(repos, alice)
    await repos.idempotency.claim(alice.id, "key-1", "fp-old", T0, TTL)
    await repos.idempotency.record(alice.id, "key-1", old)
    afresh = T0 + TTL + timedelta(seconds=1)

    # Not purged: the claim itself treats the expired key as free.
    assert await repos.idempotency.claim(alice.id, "key-1", "fp-new", afresh, TTL) is None
    new = await tasks_of(repos, alice).add(a_task(alice, "Created afresh", at=afresh))
    await repos.idempotency.record(alice.id, "key-1", new)

    # Within the ttl of the new claim (and long past the old one's), the new creation comes back.
    replayed = await repos.idempotency.claim(alice.id, "key-1", "fp-x", afresh + TTL, TTL)
    assert replayed == EarlierCreation("fp-new", new)


async def test_a_claim_forgets_no_other_key_even_an_expired_one(repos: Repositories) -> None:
    alice = await repos.users.add(a_user("alice@example.com"))
    bob = await repos.users.add(a_user("bob@example.com"))
    task = await recorded_task(repos, alice)
    await repos.idempotency.claim(alice.id, "old", "fp-old", T0, TTL)
    await repos.idempotency.record(alice.id, "old", task)
    await repos.idempotency.claim(alice.id, "other", "fp-other", T0, TTL)

    # Claims long past the ttl of alice's keys, by bob and by alice herself.
    long_after = T0 + TTL + timedelta(days=1)
    await repos.idempotency.claim(bob.id, "new", "fp-new", long_after, TTL)
    await repos.idempotency.claim(alice.id, "new", "fp-new", long_after, TTL)

    # Asked at a moment when they are within the ttl, alice's old keys are still there:
    # forgetting is the purge's work, never a claim's.
    within = T0 + timedelta(hours=1)
    assert await repos.idempotency.claim(alice.id, "old", "fp", within, TTL) == EarlierCreation(
        "fp-old", task
    )
    assert await repos.idempotency.claim(alice.id, "other", "fp", within, TTL) == EarlierCreation(
        "fp-other", None
    )


async def test_purging_forgets_every_owners_keys_claimed_before_the_moment_and_counts_them(
    repos: Repositories,
) -> None:
    alice = await repos.users.add(a_user("alice@example.com"))
    bob = await repos.users.add(a_user("bob@example.com"))
    task = await recorded_task(repos, alice)
    await repos.idempotency.claim(alice.id, "old", "fp-old", T0, TTL)
    await repos.idempotency.record(alice.id, "old", task)
    await repos.idempotency.claim(bob.id, "old", "fp-bob", T0 + timedelta(hours=1), TTL)
    await repos.idempotency.claim(bob.id, "barely", "fp-barely", T0 + TTL - MICROSECOND, TTL)
    await repos.idempotency.claim(alice.id, "young", "fp-young", T0 + TTL, TTL)
    await repos.idempotency.claim(bob.id, "young", "fp-bob-young", T0 + TTL + MICROSECOND, TTL)

    assert await repos.idempotency.purge_expired(T0 + TTL) == 3

    # Asked at a moment when they would still be within the ttl, the old keys are gone.
    assert (
        await repos.idempotency.claim(alice.id, "old", "fp", T0 + timedelta(hours=2), TTL) is None
    )
    assert await repos.idempotency.claim(bob.id, "old", "fp", T0 + timedelta(hours=2), TTL) is None
    assert await repos.idempotency.claim(bob.id, "barely", "fp", T0 + TTL, TTL) is None
    # The keys claimed at the moment or after it stay.
    within = T0 + TTL + timedelta(hours=1)
    assert await repos.idempotency.claim(alice.id, "young", "fp", within, TTL) == EarlierCreation(
        "fp-young", None
    )
    assert await repos.idempotency.claim(bob.id, "young", "fp", within, TTL) == EarlierCreation(
        "fp-bob-young", None
    )


async def test_purging_again_finds_no_more_keys_to_forget(repos: Repositories) -> None:
    alice = await repos.users.add(a_user())
    await repos.idempotency.claim(alice.id, "old", "fp-old", T0, TTL)
    await repos.idempotency.claim(alice.id, "young", "fp-young", T0 + TTL, TTL)
    assert await repos.idempotency.purge_expired(T0 + timedelta(hours=1)) == 1

    assert await repos.idempotency.purge_expired(T0 + timedelta(hours=1)) == 0
    assert await repos.idempotency.claim(alice.id, "young", "fp", T0 + TTL, TTL) == EarlierCreation(
        "fp-young", None
    )


# --- atomic blocks -----------------------------------------------------------------------------


class Abandoned(Exception):
    """Raised by a test to end an atomic block in failure."""


async def test_an_atomic_block_that_succeeds_keeps_every_change_made_in_it(
    repos: Repositories,
) -> None:
    alice = await repos.users.add(a_user())

    alices = tasks_of(repos, alice)

    async with repos.transactions.atomic():
        await alices.admit()
        assert await repos.idempotency.claim(alice.id, "key-1", "fp-1", T0, TTL) is None
        task = await alices.add(a_task(alice))
        await repos.idempotency.record(alice.id, "key-1", task)

    assert await alices.get(task.id) == task
    earlier = await repos.idempotency.claim(alice.id, "key-1", "fp-1", T0, TTL)
    assert earlier is not None and earlier.task == task


async def test_an_atomic_block_that_raises_undoes_every_change_made_in_it(
    repos: Repositories,
) -> None:
    alice = await repos.users.add(a_user())
    alices = tasks_of(repos, alice)
    kept = await alices.add(a_task(alice, "Kept"))

    with pytest.raises(Abandoned):
        async with repos.transactions.atomic():
            assert await repos.idempotency.claim(alice.id, "key-1", "fp-1", T0, TTL) is None
            added = await alices.add(a_task(alice, "Added"))
            changed = await alices.update(replace(kept, title="Changed", completed=True))
            assert changed is not None
            await repos.users.cut_off_tokens(alice.id, T0)
            raise Abandoned()

    assert await alices.get(added.id) is None
    assert await alices.get(kept.id) == kept
    assert (await repos.users.get(alice.id)) == alice
    page = await alices.list(TaskQuery(limit=10), now())
    assert ([t.id for t in page.tasks], page.total) == ([kept.id], 1)
    # The key is free again: a retry may claim it.
    assert await repos.idempotency.claim(alice.id, "key-1", "fp-1", T0, TTL) is None


async def test_a_nested_atomic_block_that_raises_undoes_only_its_own_changes(
    repos: Repositories,
) -> None:
    alice = await repos.users.add(a_user())
    alices = tasks_of(repos, alice)

    async with repos.transactions.atomic():
        outer = await alices.add(a_task(alice, "Outer"))
        with pytest.raises(Abandoned):
            async with repos.transactions.atomic():
                inner = await alices.add(a_task(alice, "Inner"))
                raise Abandoned()

    assert await alices.get(outer.id) == outer
    assert await alices.get(inner.id) is None


async def test_changes_outside_an_atomic_block_stay_when_a_later_block_fails(
    repos: Repositories,
) -> None:
    alice = await repos.users.add(a_user())
    alices = tasks_of(repos, alice)
    before = await alices.add(a_task(alice, "Before"))

    with pytest.raises(Abandoned):
        async with repos.transactions.atomic():
            assert await alices.delete(before.id) is True
            raise Abandoned()
    after = await alices.add(a_task(alice, "After"))

    assert await alices.get(before.id) == before
    assert await alices.get(after.id) == after


# --- accounts linked to Better Auth identities -------------------------------------------------

ISSUER = "https://auth.example.com"


async def test_a_user_without_a_password_is_stored_and_read_back(repos: Repositories) -> None:
    user = await repos.users.add(replace(a_user(), password_hash=None))

    assert user.password_hash is None
    assert await repos.users.get(user.id) == user
    assert await repos.users.get_by_email(user.email) == user


async def test_an_identity_links_to_one_account_and_the_first_link_wins(
    repos: Repositories,
) -> None:
    alice = await repos.users.add(a_user("alice@example.com"))
    bob = await repos.users.add(a_user("bob@example.com"))

    assert await repos.identities.account_of(ISSUER, "ba-alice") is None
    assert await repos.identities.link(ISSUER, "ba-alice", alice.id) == alice.id
    assert await repos.identities.link(ISSUER, "ba-alice", bob.id) == alice.id

    assert await repos.identities.account_of(ISSUER, "ba-alice") == alice.id
    assert await repos.identities.account_of("https://other.example.com", "ba-alice") is None
    assert await repos.identities.is_linked(alice.id)
    assert not await repos.identities.is_linked(bob.id)


async def test_an_account_may_have_several_identities(repos: Repositories) -> None:
    alice = await repos.users.add(a_user())

    await repos.identities.link(ISSUER, "first", alice.id)
    await repos.identities.link(ISSUER, "second", alice.id)

    assert await repos.identities.account_of(ISSUER, "first") == alice.id
    assert await repos.identities.account_of(ISSUER, "second") == alice.id


async def test_finding_an_identity_reads_its_account_and_the_revocation_at_once(
    repos: Repositories,
) -> None:
    alice = await repos.users.add(a_user())
    await repos.identities.link(ISSUER, "ba-alice", alice.id)
    await repos.revocations.revoke("logged-out", datetime.now(UTC) + timedelta(hours=1))

    live = await repos.identities.find(ISSUER, "ba-alice", "live")
    logged_out = await repos.identities.find(ISSUER, "ba-alice", "logged-out")
    unknown = await repos.identities.find(ISSUER, "nobody", "logged-out")

    assert (live.user, live.token_revoked) == (alice, False)
    assert (logged_out.user, logged_out.token_revoked) == (alice, True)
    assert (unknown.user, unknown.token_revoked) == (None, True)


async def test_a_link_goes_with_its_account(repos: Repositories) -> None:
    alice = await repos.users.add(a_user())
    await repos.identities.link(ISSUER, "ba-alice", alice.id)

    await repos.users.delete(alice.id)

    assert await repos.identities.account_of(ISSUER, "ba-alice") is None
    assert (await repos.identities.find(ISSUER, "ba-alice", "key")).user is None
    again = await repos.users.add(a_user())
    assert await repos.identities.link(ISSUER, "ba-alice", again.id) == again.id


async def test_concurrent_links_of_one_identity_agree_on_one_account(
    repos: Repositories,
) -> None:
    accounts = [await repos.users.add(a_user(f"user{n}@example.com")) for n in range(6)]

    linked = await asyncio.gather(
        *(repos.identities.link(ISSUER, "ba-someone", user.id) for user in accounts)
    )

    assert len(set(linked)) == 1
    assert linked[0] in {user.id for user in accounts}


async def test_a_taken_email_inside_an_atomic_block_leaves_the_block_usable(
    repos: Repositories,
) -> None:
    alice = await repos.users.add(a_user("alice@example.com"))

    async with repos.transactions.atomic():
        with pytest.raises(EmailAlreadyRegistered):
            await repos.users.add(a_user("ALICE@example.com"))
        # The block goes on: the failed insert did not abort it.
        assert await repos.identities.link(ISSUER, "ba-alice", alice.id) == alice.id

    assert await repos.identities.account_of(ISSUER, "ba-alice") == alice.id


async def test_an_account_and_its_link_made_in_a_failed_block_are_both_undone(
    repos: Repositories,
) -> None:
    with pytest.raises(Abandoned):
        async with repos.transactions.atomic():
            user = await repos.users.add(a_user("new@example.com"))
            await repos.identities.link(ISSUER, "ba-new", user.id)
            raise Abandoned()

    assert await repos.users.get_by_email("new@example.com") is None
    assert await repos.identities.account_of(ISSUER, "ba-new") is None


async def test_changing_the_email_stores_it_unless_another_account_has_it(
    repos: Repositories,
) -> None:
    alice = await repos.users.add(a_user("alice@example.com"))
    await repos.users.add(a_user("bob@example.com"))

    assert await repos.users.change_email(alice.id, "alice@new.example.com")
    assert not await repos.users.change_email(alice.id, "bob@example.com")
    assert not await repos.users.change_email(uuid.uuid4(), "nobody@example.com")

    found = await repos.users.get(alice.id)
    assert found is not None
    assert found.email == "alice@new.example.com"
    assert await repos.users.get_by_email("alice@example.com") is None
