"""TaskService on the in-memory repository: listing, paging, the use cases and ownership."""

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID, uuid4

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    rule,
)

from adapters.memory import (
    FixedClock,
    InMemoryIdempotencyStore,
    InMemoryTaskRepository,
    InMemoryTransactions,
)
from adapters.system import RandomIds
from application.errors import UserNotFound
from application.ports import IdGenerator
from application.tasks import TaskService
from domain.errors import TaskAccessDenied, TaskNotFound, ValidationFailed
from domain.queries import DEFAULT_PAGE_SIZE, MAX_OFFSET, MAX_PAGE_SIZE, TaskQuery
from domain.tasks import UNCHANGED, Task, TaskChanges
from tests.unit.owners import caller, task_repository

T = TypeVar("T")

START = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
ALICE = UUID("aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa")
BOB = UUID("bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb")


class SequentialIds:
    """Ids handed out in a known order, to pin down the tie-break on equal created_at."""

    def __init__(self, ids: list[UUID]) -> None:
        self._ids = list(ids)

    def new_id(self) -> UUID:
        return self._ids.pop(0)


def in_memory_task_service(
    repository: InMemoryTaskRepository, clock: FixedClock, ids: IdGenerator | None = None
) -> TaskService:
    idempotency = InMemoryIdempotencyStore()
    return TaskService(
        tasks=repository,
        idempotency=idempotency,
        transactions=InMemoryTransactions(repository, idempotency),
        clock=clock,
        ids=ids or RandomIds(),
    )


@dataclass
class World:
    service: TaskService
    repository: InMemoryTaskRepository
    clock: FixedClock


@pytest.fixture
def world() -> World:
    clock = FixedClock(START)
    repository = task_repository(ALICE, BOB, kind=InMemoryTaskRepository, clock=clock)
    return World(in_memory_task_service(repository, clock), repository, clock)


async def create_at(world: World, owner: UUID, title: str, at: datetime, **fields: Any) -> Task:
    world.clock.set(at)
    return await world.service.create(caller(owner), title=title, **fields)


def titles(tasks: Any) -> list[str]:
    return [t.title for t in tasks]


# --- create and get ---------------------------------------------------------------------------


async def test_create_stores_a_task_for_the_owner(world: World) -> None:
    task = await world.service.create(caller(ALICE), title="  Buy milk ", description="two litres")
    assert (task.owner_id, task.title, task.description, task.completed) == (
        ALICE,
        "Buy milk",
        "two litres",
        False,
    )
    assert task.created_at == task.updated_at == START
    assert await world.service.get(caller(ALICE), task.id) == task


async def test_create_defaults_to_no_description_and_open(world: World) -> None:
    task = await world.service.create(caller(ALICE), title="x")
    assert task.description is None
    assert task.completed is False


async def test_create_may_start_completed(world: World) -> None:
    assert (await world.service.create(caller(ALICE), title="x", completed=True)).completed is True


async def test_create_with_a_broken_rule_stores_nothing(world: World) -> None:
    with pytest.raises(ValidationFailed) as caught:
        await world.service.create(caller(ALICE), title=" ", description="\x00")
    assert [e.field for e in caught.value.errors] == ["title", "description"]
    assert (await world.service.list(caller(ALICE), TaskQuery())).total == 0


async def test_get_of_a_missing_task_is_not_found(world: World) -> None:
    with pytest.raises(TaskNotFound):
        await world.service.get(caller(ALICE), uuid4())


# --- list -------------------------------------------------------------------------------------


async def test_list_is_newest_first(world: World) -> None:
    for minutes, title in [(0, "first"), (2, "third"), (1, "second")]:
        await create_at(world, ALICE, title, START + timedelta(minutes=minutes))
    page = await world.service.list(caller(ALICE), TaskQuery())
    assert titles(page.tasks) == ["third", "second", "first"]
    assert page.total == 3


async def test_list_breaks_created_at_ties_by_id_descending() -> None:
    ids = [UUID(int=n) for n in (5, 9, 1, 7)]
    clock = FixedClock(START)
    repository = task_repository(ALICE, BOB, kind=InMemoryTaskRepository, clock=clock)
    service = in_memory_task_service(repository, clock, SequentialIds(ids))
    for n in range(4):
        await service.create(caller(ALICE), title=f"task {n}")
    page = await service.list(caller(ALICE), TaskQuery())
    assert [t.id for t in page.tasks] == sorted(ids, reverse=True)


async def test_list_shows_only_the_owners_tasks(world: World) -> None:
    await world.service.create(caller(ALICE), title="alice's")
    await world.service.create(caller(BOB), title="bob's")
    alice_page = await world.service.list(caller(ALICE), TaskQuery())
    assert titles(alice_page.tasks) == ["alice's"]
    assert alice_page.total == 1
    with pytest.raises(UserNotFound):  # a caller without an account sees no list at all
        await world.service.list(caller(uuid4()), TaskQuery())


async def test_list_pages_with_limit_and_offset_and_total_counts_all(world: World) -> None:
    for n in range(7):
        await create_at(world, ALICE, f"t{n}", START + timedelta(seconds=n))
    every = titles((await world.service.list(caller(ALICE), TaskQuery())).tasks)
    assert every == [f"t{n}" for n in reversed(range(7))]

    pages = [
        await world.service.list(caller(ALICE), TaskQuery(limit=3, offset=o)) for o in (0, 3, 6, 9)
    ]
    assert [titles(p.tasks) for p in pages] == [every[0:3], every[3:6], every[6:7], []]
    assert {p.total for p in pages} == {7}


async def test_list_filters_on_completed_and_total_counts_the_filter(world: World) -> None:
    for n in range(5):
        await create_at(world, ALICE, f"t{n}", START + timedelta(seconds=n), completed=n % 2 == 0)
    done = await world.service.list(caller(ALICE), TaskQuery(completed=True, limit=2))
    assert titles(done.tasks) == ["t4", "t2"]
    assert done.total == 3
    open_ = await world.service.list(caller(ALICE), TaskQuery(completed=False))
    assert titles(open_.tasks) == ["t3", "t1"]
    assert open_.total == 2
    assert (await world.service.list(caller(ALICE), TaskQuery())).total == 5


async def test_list_sees_an_update_of_completed(world: World) -> None:
    task = await world.service.create(caller(ALICE), title="x")
    await world.service.update(caller(ALICE), task.id, TaskChanges(completed=True))
    assert (await world.service.list(caller(ALICE), TaskQuery(completed=False))).total == 0
    assert titles((await world.service.list(caller(ALICE), TaskQuery(completed=True))).tasks) == [
        "x"
    ]


def test_task_query_defaults() -> None:
    query = TaskQuery()
    assert (query.completed, query.limit, query.offset) == (None, 100, 0)
    assert DEFAULT_PAGE_SIZE == 100


@pytest.mark.parametrize(
    ("limit", "offset"), [(1, 0), (MAX_PAGE_SIZE, 0), (1000, 10**9), (1, MAX_OFFSET)]
)
def test_task_query_accepts_bounds(limit: int, offset: int) -> None:
    assert TaskQuery(limit=limit, offset=offset).limit == limit


@pytest.mark.parametrize(
    ("limit", "offset", "fields"),
    [
        (0, 0, ["limit"]),
        (-1, 0, ["limit"]),
        (1001, 0, ["limit"]),
        (10, -1, ["offset"]),
        (0, -5, ["limit", "offset"]),
        (10, MAX_OFFSET + 1, ["offset"]),
    ],
)
def test_task_query_out_of_bounds_names_the_fields(
    limit: int, offset: int, fields: list[str]
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        TaskQuery(limit=limit, offset=offset)
    assert [e.field for e in caught.value.errors] == fields


# --- update -----------------------------------------------------------------------------------


async def test_update_changes_only_the_given_fields(world: World) -> None:
    task = await world.service.create(
        caller(ALICE), title="Old", description="keep", completed=False
    )
    world.clock.set(START + timedelta(minutes=1))
    updated = await world.service.update(caller(ALICE), task.id, TaskChanges(title="  New "))
    assert (updated.title, updated.description, updated.completed) == ("New", "keep", False)
    assert updated.created_at == START
    assert updated.updated_at == START + timedelta(minutes=1)
    assert await world.service.get(caller(ALICE), task.id) == updated


async def test_update_with_none_clears_the_description(world: World) -> None:
    task = await world.service.create(caller(ALICE), title="x", description="something")
    updated = await world.service.update(caller(ALICE), task.id, TaskChanges(description=None))
    assert updated.description is None
    assert (await world.service.get(caller(ALICE), task.id)).description is None


async def test_update_moves_updated_at_forward_though_the_clock_stands_still(
    world: World,
) -> None:
    task = await world.service.create(caller(ALICE), title="x")
    first = await world.service.update(caller(ALICE), task.id, TaskChanges(completed=True))
    second = await world.service.update(caller(ALICE), task.id, TaskChanges(completed=False))
    assert task.updated_at < first.updated_at < second.updated_at
    assert second.created_at == START


async def test_update_moves_updated_at_forward_though_the_clock_steps_back(world: World) -> None:
    task = await world.service.create(caller(ALICE), title="x")
    world.clock.set(START - timedelta(days=1))
    updated = await world.service.update(caller(ALICE), task.id, TaskChanges(title="y"))
    assert updated.updated_at > task.updated_at
    assert updated.created_at == START


async def test_update_with_a_broken_rule_changes_nothing(world: World) -> None:
    task = await world.service.create(caller(ALICE), title="x")
    with pytest.raises(ValidationFailed) as caught:
        await world.service.update(caller(ALICE), task.id, TaskChanges(title="y" * 201))
    assert [e.field for e in caught.value.errors] == ["title"]
    assert await world.service.get(caller(ALICE), task.id) == task


async def test_update_of_a_missing_task_is_not_found(world: World) -> None:
    with pytest.raises(TaskNotFound):
        await world.service.update(caller(ALICE), uuid4(), TaskChanges(completed=True))


# --- delete -----------------------------------------------------------------------------------


async def test_delete_removes_the_task(world: World) -> None:
    task = await world.service.create(caller(ALICE), title="x")
    await world.service.delete(caller(ALICE), task.id)
    with pytest.raises(TaskNotFound):
        await world.service.get(caller(ALICE), task.id)
    with pytest.raises(TaskNotFound):
        await world.service.delete(caller(ALICE), task.id)


async def test_delete_of_a_missing_task_is_not_found(world: World) -> None:
    with pytest.raises(TaskNotFound):
        await world.service.delete(caller(ALICE), uuid4())


# --- ownership --------------------------------------------------------------------------------


async def test_another_user_cannot_get_update_or_delete_the_task(world: World) -> None:
    task = await world.service.create(caller(ALICE), title="secret", description="mine")
    with pytest.raises(TaskAccessDenied):
        await world.service.get(caller(BOB), task.id)
    with pytest.raises(TaskAccessDenied):
        await world.service.update(caller(BOB), task.id, TaskChanges(title="pwned", completed=True))
    with pytest.raises(TaskAccessDenied):
        await world.service.delete(caller(BOB), task.id)
    assert await world.service.get(caller(ALICE), task.id) == task


# --- a state machine: Bob tries everything on Alice's tasks -----------------------------------

task_titles = st.text(alphabet="abc xyz", min_size=1, max_size=12).filter(lambda s: s.strip())
task_descriptions = st.none() | st.text(alphabet="abc", max_size=8)
maybe = st.sampled_from([UNCHANGED])


def changes_strategy() -> st.SearchStrategy[TaskChanges]:
    return st.builds(
        TaskChanges,
        title=maybe | task_titles,
        description=maybe | task_descriptions,
        completed=maybe | st.booleans(),
    )


@dataclass(frozen=True)
class Expected:
    title: str
    description: str | None
    completed: bool


class OwnershipMachine(RuleBasedStateMachine):
    """Alice works on her list; Bob pokes at her task ids and at random ones.

    Invariant: Alice's list is exactly what Alice did, and nothing Bob does reaches it."""

    alice_tasks = Bundle("alice_tasks")
    alice_deleted = Bundle("alice_deleted")
    bob_tasks = Bundle("bob_tasks")

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.clock = FixedClock(START)
        self.service = in_memory_task_service(
            task_repository(ALICE, BOB, kind=InMemoryTaskRepository, clock=self.clock), self.clock
        )
        self.alice: dict[UUID, Expected] = {}
        self.bob: dict[UUID, Expected] = {}

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coroutine)

    def teardown(self) -> None:
        self.loop.close()

    def tick(self) -> None:
        self.clock.set(self.clock.now() + timedelta(seconds=1))

    @initialize(target=alice_tasks)
    def alice_starts_with_a_task(self) -> UUID:
        return self.create(ALICE, self.alice, "first", None, False)

    def create(
        self,
        owner: UUID,
        model: dict[UUID, Expected],
        title: str,
        description: str | None,
        done: bool,
    ) -> UUID:
        self.tick()
        task = self.run(
            self.service.create(caller(owner), title=title, description=description, completed=done)
        )
        model[task.id] = Expected(title.strip(), description, done)
        return task.id

    @rule(target=alice_tasks, title=task_titles, description=task_descriptions, done=st.booleans())
    def alice_creates(self, title: str, description: str | None, done: bool) -> UUID:
        return self.create(ALICE, self.alice, title, description, done)

    @rule(target=bob_tasks, title=task_titles, description=task_descriptions, done=st.booleans())
    def bob_creates(self, title: str, description: str | None, done: bool) -> UUID:
        return self.create(BOB, self.bob, title, description, done)

    @rule(task_id=alice_tasks, changes=changes_strategy())
    def alice_updates(self, task_id: UUID, changes: TaskChanges) -> None:
        self.tick()
        updated = self.run(self.service.update(caller(ALICE), task_id, changes))
        before = self.alice[task_id]
        self.alice[task_id] = Expected(
            before.title if changes.title is UNCHANGED else changes.title.strip(),
            before.description if changes.description is UNCHANGED else changes.description,
            before.completed if changes.completed is UNCHANGED else changes.completed,
        )
        assert updated.owner_id == ALICE

    @rule(target=alice_deleted, task_id=consumes(alice_tasks))
    def alice_deletes(self, task_id: UUID) -> UUID:
        self.run(self.service.delete(caller(ALICE), task_id))
        del self.alice[task_id]
        return task_id

    @rule(task_id=alice_deleted)
    def alice_finds_her_deleted_task_gone(self, task_id: UUID) -> None:
        with pytest.raises(TaskNotFound):
            self.run(self.service.get(caller(ALICE), task_id))
        with pytest.raises(TaskNotFound):
            self.run(self.service.update(caller(ALICE), task_id, TaskChanges(completed=True)))

    def expect_refusal_for_bob(self, task_id: UUID, attempt: Coroutine[Any, Any, Any]) -> None:
        error = TaskAccessDenied if task_id in self.alice else TaskNotFound
        with pytest.raises(error):
            self.run(attempt)

    @rule(task_id=alice_tasks | alice_deleted | st.uuids())
    def bob_gets(self, task_id: UUID) -> None:
        self.expect_refusal_for_bob(task_id, self.service.get(caller(BOB), task_id))

    @rule(task_id=alice_tasks | alice_deleted | st.uuids(), changes=changes_strategy())
    def bob_updates(self, task_id: UUID, changes: TaskChanges) -> None:
        self.tick()
        self.expect_refusal_for_bob(task_id, self.service.update(caller(BOB), task_id, changes))

    @rule(task_id=alice_tasks | alice_deleted | st.uuids())
    def bob_deletes(self, task_id: UUID) -> None:
        self.expect_refusal_for_bob(task_id, self.service.delete(caller(BOB), task_id))

    @rule(task_id=bob_tasks)
    def bob_uses_his_own_task(self, task_id: UUID) -> None:
        task = self.run(self.service.get(caller(BOB), task_id))
        assert (task.owner_id, task.title) == (BOB, self.bob[task_id].title)

    @rule(
        completed=st.none() | st.booleans(),
        limit=st.integers(min_value=1, max_value=5),
        offset=st.integers(min_value=0, max_value=5),
    )
    def bob_lists(self, completed: bool | None, limit: int, offset: int) -> None:
        query = TaskQuery(completed=completed, limit=limit, offset=offset)
        page = self.run(self.service.list(caller(BOB), query))
        assert all(t.owner_id == BOB for t in page.tasks)
        assert not {t.id for t in page.tasks} & set(self.alice)
        matching = [e for e in self.bob.values() if completed is None or e.completed == completed]
        assert page.total == len(matching)

    @invariant()
    def alice_sees_exactly_what_she_did(self) -> None:
        page = self.run(self.service.list(caller(ALICE), TaskQuery(limit=MAX_PAGE_SIZE)))
        seen = {
            t.id: Expected(t.title, t.description, t.completed)
            for t in page.tasks
            if t.owner_id == ALICE
        }
        assert len(seen) == len(page.tasks)  # nobody else's task in her list
        assert seen == self.alice
        assert page.total == len(self.alice)

    @invariant()
    def bob_sees_exactly_his_own(self) -> None:
        page = self.run(self.service.list(caller(BOB), TaskQuery(limit=MAX_PAGE_SIZE)))
        assert {t.id: Expected(t.title, t.description, t.completed) for t in page.tasks} == self.bob


OwnershipMachine.TestCase.settings = settings(
    max_examples=50,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestOwnership = OwnershipMachine.TestCase
