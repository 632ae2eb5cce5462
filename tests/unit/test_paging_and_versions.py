"""Keyset paging (TaskQuery.after, next_of(TaskPage)) and conditional writes
(expected_versions) of TaskService, on the in-memory repository."""

import asyncio
from collections.abc import Collection, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.memory import (
    FixedClock,
    InMemoryCallerTasks,
    InMemoryIdempotencyStore,
    InMemoryRevocationStore,
    InMemoryTaskRepository,
    InMemoryTransactions,
    InMemoryUserRepository,
)
from adapters.system import RandomIds
from application.ports import Caller, Clock, TaskPage
from application.tasks import TaskService
from domain.errors import TaskAccessDenied, TaskChanged, TaskNotFound, ValidationFailed
from domain.queries import MAX_OFFSET, TaskPosition, TaskQuery, TaskSort, position_of
from domain.tasks import Task, TaskChanges
from tests.unit.owners import caller, task_repository

START = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
ALICE = UUID("aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa")
BOB = UUID("bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb")
SOMEWHERE = TaskPosition(START, UUID(int=7))

NEWEST = TaskSort.NEWEST


def next_of(page: TaskPage) -> TaskPosition | None:
    return page.next_position(NEWEST)


class QueuedIds:
    """Ids handed out in a known order: to control the tie-break on equal created_at."""

    def __init__(self, ids: Collection[UUID]) -> None:
        self._ids: Iterator[UUID] = iter(list(ids))

    def new_id(self) -> UUID:
        return next(self._ids)


@dataclass
class World:
    service: TaskService
    repository: InMemoryTaskRepository
    clock: FixedClock


def make_world(
    repository: InMemoryTaskRepository | None = None,
    ids: QueuedIds | None = None,
    clock: FixedClock | None = None,
) -> World:
    clock = clock or FixedClock(START)
    repository = repository or task_repository(ALICE, BOB, kind=InMemoryTaskRepository, clock=clock)
    idempotency = InMemoryIdempotencyStore()
    service = TaskService(
        tasks=repository,
        idempotency=idempotency,
        transactions=InMemoryTransactions(repository, idempotency),
        clock=clock,
        ids=ids or RandomIds(),
    )
    return World(service, repository, clock)


@pytest.fixture
def world() -> World:
    return make_world()


async def create_at(
    world: World, at: datetime, title: str = "t", owner: UUID = ALICE, completed: bool = False
) -> Task:
    world.clock.set(at)
    return await world.service.create(caller(owner), title=title, completed=completed)


def newest_first(tasks: Collection[Task]) -> list[Task]:
    return sorted(tasks, key=lambda t: (t.created_at, t.id), reverse=True)


# --- TaskQuery --------------------------------------------------------------------------------


def test_a_cursor_may_be_combined_with_an_offset() -> None:
    # The contract changed in 4e72cfd: with both, `offset` tasks are skipped after the cursor.
    query = TaskQuery(after=SOMEWHERE, offset=3, limit=5)
    assert (query.after, query.offset, query.limit) == (SOMEWHERE, 3, 5)
    assert TaskQuery(after=SOMEWHERE, offset=0).offset == 0


def test_a_cursor_with_bad_bounds_names_the_fields() -> None:
    with pytest.raises(ValidationFailed) as caught:
        TaskQuery(after=SOMEWHERE, limit=0, offset=-1)
    assert [e.field for e in caught.value.errors] == ["limit", "offset"]
    with pytest.raises(ValidationFailed) as caught:
        TaskQuery(after=SOMEWHERE, offset=MAX_OFFSET + 1)
    assert [e.field for e in caught.value.errors] == ["offset"]


def test_no_cursor_by_default() -> None:
    assert TaskQuery().after is None


# --- TaskPage.next_position -------------------------------------------------------------------


def a_task(minutes: int) -> Task:
    at = START + timedelta(minutes=minutes)
    return Task(uuid4(), ALICE, "t", None, False, at, at)


def test_next_position_is_the_last_task_when_more_follow() -> None:
    tasks = [a_task(2), a_task(1)]
    assert next_of(TaskPage(tasks, total=5, has_more=True)) == position_of(tasks[-1], NEWEST)


def test_no_next_position_on_the_last_page_or_an_empty_one() -> None:
    assert TaskPage([a_task(1)], total=1, has_more=False).next_position(NEWEST) is None
    assert next_of(TaskPage([], total=3, has_more=True)) is None
    assert next_of(TaskPage([], total=0)) is None


def test_a_tasks_position_is_its_created_at_and_id() -> None:
    task = a_task(3)
    assert position_of(task, NEWEST) == TaskPosition(task.created_at, task.id)


# --- list with after --------------------------------------------------------------------------


async def test_pages_follow_one_another_by_position(world: World) -> None:
    created = [await create_at(world, START + timedelta(seconds=n), f"t{n}") for n in range(7)]
    expected = newest_first(created)

    first = await world.service.list(caller(ALICE), TaskQuery(limit=3))
    assert list(first.tasks) == expected[0:3]
    assert first.has_more
    assert next_of(first) == position_of(expected[2], NEWEST)

    second = await world.service.list(caller(ALICE), TaskQuery(limit=3, after=next_of(first)))
    assert list(second.tasks) == expected[3:6]
    assert second.has_more
    assert next_of(second) == position_of(expected[5], NEWEST)

    last = await world.service.list(caller(ALICE), TaskQuery(limit=3, after=next_of(second)))
    assert list(last.tasks) == expected[6:]
    assert not last.has_more
    assert next_of(last) is None
    assert {first.total, second.total, last.total} == {7}


async def test_an_exactly_full_last_page_has_no_more(world: World) -> None:
    for n in range(4):
        await create_at(world, START + timedelta(seconds=n))
    first = await world.service.list(caller(ALICE), TaskQuery(limit=2))
    second = await world.service.list(caller(ALICE), TaskQuery(limit=2, after=next_of(first)))
    assert len(second.tasks) == 2
    assert (second.has_more, next_of(second)) == (False, None)


async def test_after_breaks_created_at_ties_by_id() -> None:
    ids = [UUID(int=n) for n in (5, 9, 1, 7, 3)]
    world = make_world(ids=QueuedIds(ids))
    for _ in ids:
        await world.service.create(caller(ALICE), title="same moment")
    walked = []
    after = None
    while True:
        page = await world.service.list(caller(ALICE), TaskQuery(limit=2, after=after))
        walked += [t.id for t in page.tasks]
        if next_of(page) is None:
            break
        after = next_of(page)
    assert walked == sorted(ids, reverse=True)


async def test_after_a_task_that_is_gone_still_continues_where_it_stood(world: World) -> None:
    created = [await create_at(world, START + timedelta(seconds=n), f"t{n}") for n in range(5)]
    first = await world.service.list(caller(ALICE), TaskQuery(limit=2))
    assert next_of(first) is not None
    await world.service.delete(caller(ALICE), first.tasks[-1].id)
    second = await world.service.list(caller(ALICE), TaskQuery(limit=2, after=next_of(first)))
    assert list(second.tasks) == newest_first(created)[2:4]


async def test_a_task_created_meanwhile_does_not_shift_later_pages(world: World) -> None:
    created = [await create_at(world, START + timedelta(seconds=n), f"t{n}") for n in range(4)]
    first = await world.service.list(caller(ALICE), TaskQuery(limit=2))
    await create_at(world, START + timedelta(hours=1), "newer")
    second = await world.service.list(caller(ALICE), TaskQuery(limit=2, after=next_of(first)))
    assert list(second.tasks) == newest_first(created)[2:4]
    assert second.total == 5


async def test_after_keeps_to_the_filter_and_the_owner(world: World) -> None:
    for n in range(6):
        await create_at(world, START + timedelta(seconds=n), f"t{n}", completed=n % 2 == 0)
        await create_at(world, START + timedelta(seconds=n), f"bob{n}", owner=BOB)
    first = await world.service.list(caller(ALICE), TaskQuery(completed=True, limit=2))
    assert [t.title for t in first.tasks] == ["t4", "t2"]
    rest = await world.service.list(
        caller(ALICE), TaskQuery(completed=True, limit=2, after=next_of(first))
    )
    assert [t.title for t in rest.tasks] == ["t0"]
    assert (rest.total, rest.has_more) == (3, False)


async def test_an_offset_with_a_cursor_skips_that_many_after_it(world: World) -> None:
    created = [await create_at(world, START + timedelta(seconds=n), f"t{n}") for n in range(7)]
    expected = newest_first(created)
    first = await world.service.list(caller(ALICE), TaskQuery(limit=2))
    skipping = await world.service.list(
        caller(ALICE), TaskQuery(limit=2, after=next_of(first), offset=2)
    )
    assert list(skipping.tasks) == expected[4:6]
    assert (skipping.has_more, next_of(skipping)) == (
        True,
        position_of(expected[5], NEWEST),
    )
    beyond = await world.service.list(
        caller(ALICE), TaskQuery(limit=2, after=next_of(first), offset=5)
    )
    assert (list(beyond.tasks), beyond.has_more, beyond.total) == ([], False, 7)


async def test_after_the_oldest_task_is_an_empty_last_page(world: World) -> None:
    created = [await create_at(world, START + timedelta(seconds=n)) for n in range(3)]
    oldest = newest_first(created)[-1]
    page = await world.service.list(caller(ALICE), TaskQuery(after=position_of(oldest, NEWEST)))
    assert (list(page.tasks), page.total, page.has_more, next_of(page)) == (
        [],
        3,
        False,
        None,
    )


async def test_offset_pages_say_whether_more_follow(world: World) -> None:
    for n in range(5):
        await create_at(world, START + timedelta(seconds=n))
    pages = [
        await world.service.list(caller(ALICE), TaskQuery(limit=2, offset=o)) for o in (0, 2, 4, 6)
    ]
    assert [p.has_more for p in pages] == [True, True, False, False]
    assert [len(p.tasks) for p in pages] == [2, 2, 1, 0]


# --- the property: walking with cursors sees every task once, as offsets do -------------------

task_specs = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=4),  # few distinct moments: plenty of ties
        st.uuids(),
        st.booleans(),
        st.sampled_from([ALICE, ALICE, BOB]),
    ),
    max_size=25,
    unique_by=lambda spec: spec[1],
)


async def walk_and_compare(
    specs: list[tuple[int, UUID, bool, UUID]], limit: int, completed: bool | None, skip: int
) -> None:
    world = make_world(ids=QueuedIds([task_id for _, task_id, _, _ in specs]))
    created = [
        await create_at(world, START + timedelta(seconds=s), owner=owner, completed=done)
        for s, _, done, owner in specs
    ]
    expected = newest_first(
        [t for t in created if t.owner_id == ALICE and completed in (None, t.completed)]
    )

    walked: list[Task] = []
    after: TaskPosition | None = None
    for _ in range(len(expected) + 2):
        page = await world.service.list(
            caller(ALICE), TaskQuery(completed=completed, limit=limit, after=after)
        )
        assert page.total == len(expected)
        assert (next_of(page) is not None) == page.has_more
        assert len(page.tasks) <= limit
        if page.has_more:
            assert len(page.tasks) == limit
            assert next_of(page) == position_of(page.tasks[-1], NEWEST)
        offset_page = await world.service.list(
            caller(ALICE), TaskQuery(completed=completed, limit=limit, offset=len(walked))
        )
        assert list(offset_page.tasks) == list(page.tasks)
        assert offset_page.has_more == page.has_more
        skipping = await world.service.list(
            caller(ALICE), TaskQuery(completed=completed, limit=limit, after=after, offset=skip)
        )
        from_offset = await world.service.list(
            caller(ALICE), TaskQuery(completed=completed, limit=limit, offset=len(walked) + skip)
        )
        assert list(skipping.tasks) == list(from_offset.tasks)
        assert skipping.has_more == from_offset.has_more
        walked += page.tasks
        if next_of(page) is None:
            break
        after = next_of(page)
    else:
        pytest.fail("the walk did not end")

    assert walked == expected  # every task exactly once, newest first


@given(
    specs=task_specs,
    limit=st.integers(min_value=1, max_value=7),
    completed=st.sampled_from([None, True, False]),
    skip=st.integers(min_value=0, max_value=4),
)
@settings(max_examples=150, deadline=None)
def test_walking_with_cursors_returns_every_task_once_newest_first(
    specs: list[tuple[int, UUID, bool, UUID]], limit: int, completed: bool | None, skip: int
) -> None:
    """And, from any cursor, skipping more with an offset lands where offset paging does."""
    asyncio.run(walk_and_compare(specs, limit, completed, skip))


# --- update with expected_versions ------------------------------------------------------------


async def test_update_with_the_current_version_happens(world: World) -> None:
    task = await world.service.create(caller(ALICE), title="x")
    updated = await world.service.update(
        caller(ALICE), task.id, TaskChanges(title="y"), expected_versions=[task.updated_at]
    )
    assert updated.title == "y"
    assert updated.updated_at > task.updated_at
    assert await world.service.get(caller(ALICE), task.id) == updated


async def test_update_with_the_current_version_among_others_happens(world: World) -> None:
    task = await world.service.create(caller(ALICE), title="x")
    versions = [task.updated_at - timedelta(days=1), task.updated_at, START + timedelta(days=9)]
    updated = await world.service.update(
        caller(ALICE), task.id, TaskChanges(completed=True), expected_versions=versions
    )
    assert updated.completed is True


async def test_update_with_a_stale_version_is_refused_and_changes_nothing(world: World) -> None:
    task = await world.service.create(caller(ALICE), title="x")
    # The clock stands still: the version still moves on, by a microsecond.
    current = await world.service.update(caller(ALICE), task.id, TaskChanges(title="other tab"))
    with pytest.raises(TaskChanged):
        await world.service.update(
            caller(ALICE),
            task.id,
            TaskChanges(title="this tab"),
            expected_versions=[task.updated_at],
        )
    assert await world.service.get(caller(ALICE), task.id) == current


async def test_update_with_no_acceptable_version_is_refused(world: World) -> None:
    task = await world.service.create(caller(ALICE), title="x")
    with pytest.raises(TaskChanged):
        await world.service.update(
            caller(ALICE), task.id, TaskChanges(title="y"), expected_versions=[]
        )
    assert await world.service.get(caller(ALICE), task.id) == task


async def test_the_version_an_update_returns_is_the_next_expected_one(world: World) -> None:
    task = await world.service.create(caller(ALICE), title="x")
    first = await world.service.update(
        caller(ALICE), task.id, TaskChanges(title="y"), expected_versions=[task.updated_at]
    )
    second = await world.service.update(
        caller(ALICE), task.id, TaskChanges(title="z"), expected_versions=[first.updated_at]
    )
    assert second.title == "z"
    with pytest.raises(TaskChanged):
        await world.service.update(
            caller(ALICE), task.id, TaskChanges(title="late"), expected_versions=[first.updated_at]
        )


async def test_update_of_a_missing_task_with_a_version_is_not_found(world: World) -> None:
    with pytest.raises(TaskNotFound):
        await world.service.update(
            caller(ALICE), uuid4(), TaskChanges(title="y"), expected_versions=[START]
        )


@pytest.mark.parametrize("version", ["current", "stale"])
async def test_update_of_another_users_task_is_denied_before_any_version_check(
    world: World, version: str
) -> None:
    task = await world.service.create(caller(ALICE), title="mine")
    seen = task.updated_at if version == "current" else task.updated_at - timedelta(seconds=1)
    with pytest.raises(TaskAccessDenied):
        await world.service.update(
            caller(BOB), task.id, TaskChanges(title="his"), expected_versions=[seen]
        )
    assert await world.service.get(caller(ALICE), task.id) == task


async def test_update_without_versions_is_unconditional(world: World) -> None:
    task = await world.service.create(caller(ALICE), title="x")
    await world.service.update(caller(ALICE), task.id, TaskChanges(title="y"))
    updated = await world.service.update(
        caller(ALICE), task.id, TaskChanges(title="z"), expected_versions=None
    )
    assert updated.title == "z"


# --- delete with expected_versions ------------------------------------------------------------


async def test_delete_with_the_current_version_happens(world: World) -> None:
    task = await world.service.create(caller(ALICE), title="x")
    await world.service.delete(caller(ALICE), task.id, expected_versions=[task.updated_at])
    with pytest.raises(TaskNotFound):
        await world.service.get(caller(ALICE), task.id)


async def test_delete_with_a_stale_version_is_refused_and_deletes_nothing(world: World) -> None:
    task = await world.service.create(caller(ALICE), title="x")
    current = await world.service.update(caller(ALICE), task.id, TaskChanges(completed=True))
    with pytest.raises(TaskChanged):
        await world.service.delete(caller(ALICE), task.id, expected_versions=[task.updated_at])
    assert await world.service.get(caller(ALICE), task.id) == current
    with pytest.raises(TaskChanged):
        await world.service.delete(caller(ALICE), task.id, expected_versions=[])
    assert await world.service.get(caller(ALICE), task.id) == current


async def test_delete_of_a_missing_task_with_a_version_is_not_found(world: World) -> None:
    with pytest.raises(TaskNotFound):
        await world.service.delete(caller(ALICE), uuid4(), expected_versions=[START])


@pytest.mark.parametrize("version", ["current", "stale"])
async def test_delete_of_another_users_task_is_denied_before_any_version_check(
    world: World, version: str
) -> None:
    task = await world.service.create(caller(ALICE), title="mine")
    seen = task.updated_at if version == "current" else task.updated_at - timedelta(seconds=1)
    with pytest.raises(TaskAccessDenied):
        await world.service.delete(caller(BOB), task.id, expected_versions=[seen])
    assert await world.service.get(caller(ALICE), task.id) == task


async def test_delete_without_versions_is_unconditional(world: World) -> None:
    task = await world.service.create(caller(ALICE), title="x")
    await world.service.update(caller(ALICE), task.id, TaskChanges(title="y"))
    await world.service.delete(caller(ALICE), task.id, expected_versions=None)
    assert (await world.service.list(caller(ALICE), TaskQuery())).total == 0


# --- another request between the read and the write -----------------------------------------


class InterleavingTaskRepository(InMemoryTaskRepository):
    """Runs what another request does right before this request's write reaches storage."""

    def __init__(
        self,
        users: InMemoryUserRepository,
        revocations: InMemoryRevocationStore,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(users, revocations, clock)
        self.meanwhile: list[Task | UUID] = []
        """Tasks to store (a concurrent update) or ids to delete (a concurrent delete)."""

    def for_caller(self, caller: Caller) -> InMemoryCallerTasks:
        return InterleavingCallerTasks(self, caller)

    async def interleave(self, as_caller: Caller) -> None:
        other = InMemoryCallerTasks(self, as_caller)
        for step in self.meanwhile:
            if isinstance(step, Task):
                await other.update(step)
            else:
                await other.delete(step)
        self.meanwhile = []


class InterleavingCallerTasks(InMemoryCallerTasks):
    def __init__(self, repository: InterleavingTaskRepository, caller: Caller) -> None:
        super().__init__(repository, caller)
        self._interleaving = repository
        self._as = caller

    async def update(
        self, task: Task, *, expected_versions: Collection[datetime] | None = None
    ) -> Task | None:
        await self._interleaving.interleave(self._as)
        return await super().update(task, expected_versions=expected_versions)

    async def delete(
        self, task_id: UUID, *, expected_versions: Collection[datetime] | None = None
    ) -> bool:
        await self._interleaving.interleave(self._as)
        return await super().delete(task_id, expected_versions=expected_versions)


@pytest.fixture
def racy() -> tuple[World, InterleavingTaskRepository]:
    clock = FixedClock(START)
    repository = task_repository(ALICE, BOB, kind=InterleavingTaskRepository, clock=clock)
    return make_world(repository, clock=clock), repository


async def test_a_change_between_read_and_write_is_caught(
    racy: tuple[World, InterleavingTaskRepository],
) -> None:
    world, repository = racy
    task = await world.service.create(caller(ALICE), title="x")
    other = replace(task, title="other", updated_at=task.updated_at + timedelta(microseconds=1))
    repository.meanwhile = [other]
    with pytest.raises(TaskChanged):
        await world.service.update(
            caller(ALICE), task.id, TaskChanges(title="mine"), expected_versions=[task.updated_at]
        )
    assert (await world.service.get(caller(ALICE), task.id)).title == "other"

    repository.meanwhile = [
        replace(other, title="third", updated_at=other.updated_at + timedelta(microseconds=1))
    ]
    with pytest.raises(TaskChanged):
        await world.service.delete(caller(ALICE), task.id, expected_versions=[task.updated_at])
    assert (await world.service.get(caller(ALICE), task.id)).title == "third"


async def test_a_change_of_other_fields_between_read_and_write_is_kept_with_this_one(
    racy: tuple[World, InterleavingTaskRepository],
) -> None:
    world, repository = racy
    task = await world.service.create(caller(ALICE), title="x", description="first")
    repository.meanwhile = [
        replace(task, completed=True, updated_at=task.updated_at + timedelta(microseconds=1))
    ]

    updated = await world.service.update(caller(ALICE), task.id, TaskChanges(title="mine"))

    assert (updated.title, updated.description, updated.completed) == ("mine", "first", True)
    assert await world.service.get(caller(ALICE), task.id) == updated


@pytest.mark.parametrize("expected_versions", [None, "current"])
async def test_a_delete_between_read_and_write_is_not_found(
    racy: tuple[World, InterleavingTaskRepository], expected_versions: str | None
) -> None:
    world, repository = racy
    task = await world.service.create(caller(ALICE), title="x")
    versions = None if expected_versions is None else [task.updated_at]
    repository.meanwhile = [task.id]
    with pytest.raises(TaskNotFound):
        await world.service.update(
            caller(ALICE), task.id, TaskChanges(title="y"), expected_versions=versions
        )
    second = await world.service.create(caller(ALICE), title="x")
    repository.meanwhile = [second.id]
    with pytest.raises(TaskNotFound):
        await world.service.delete(
            caller(ALICE),
            second.id,
            expected_versions=None if versions is None else [second.updated_at],
        )
