"""TaskService.create with an idempotency key, on the in-memory task and idempotency stores."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from adapters.memory import (
    FixedClock,
    InMemoryIdempotencyStore,
    InMemoryTaskRepository,
    InMemoryTransactions,
)
from adapters.system import RandomIds
from application.errors import IdempotencyKeyInUse, IdempotencyKeyReused
from application.ports import EarlierCreation
from application.tasks import IDEMPOTENCY_WINDOW, TaskService
from domain.errors import ValidationFailed
from domain.queries import TaskQuery
from domain.tasks import Task
from tests.unit.owners import caller, task_repository

START = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
ALICE = UUID("aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa")
BOB = UUID("bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb")
KEY = "3f1c2a8e-retry-me"
BODY: dict[str, Any] = {"title": "Buy milk", "description": "two litres", "completed": False}


class ClaimLog(InMemoryIdempotencyStore):
    """The in-memory store, noting the fingerprint of every claim it is asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.fingerprints: list[str] = []

    async def claim(
        self, owner_id: UUID, key: str, fingerprint: str, now: datetime, ttl: timedelta
    ) -> EarlierCreation | None:
        self.fingerprints.append(fingerprint)
        return await super().claim(owner_id, key, fingerprint, now, ttl)


@dataclass
class World:
    service: TaskService
    tasks: InMemoryTaskRepository
    store: ClaimLog
    clock: FixedClock

    async def stored(self, owner: UUID = ALICE) -> list[Task]:
        return list((await self.service.list(caller(owner), TaskQuery())).tasks)


@pytest.fixture
def world() -> World:
    tasks = task_repository(ALICE, BOB, kind=InMemoryTaskRepository)
    store = ClaimLog()
    clock = FixedClock(START)
    service = TaskService(
        tasks=tasks,
        idempotency=store,
        transactions=InMemoryTransactions(tasks, store),
        clock=clock,
        ids=RandomIds(),
    )
    return World(service, tasks, store, clock)


async def test_a_retry_gets_the_same_task_and_creates_nothing(world: World) -> None:
    first = await world.service.create(caller(ALICE), **BODY, idempotency_key=KEY)
    world.clock.set(START + timedelta(minutes=5))
    again = await world.service.create(caller(ALICE), **BODY, idempotency_key=KEY)
    once_more = await world.service.create(caller(ALICE), **BODY, idempotency_key=KEY)
    assert again == once_more == first
    assert again.created_at == START
    assert await world.stored() == [first]


async def test_without_a_key_every_request_creates_a_task(world: World) -> None:
    first = await world.service.create(caller(ALICE), **BODY)
    second = await world.service.create(caller(ALICE), **BODY, idempotency_key=None)
    assert first.id != second.id
    assert len(await world.stored()) == 2


async def test_different_keys_create_different_tasks(world: World) -> None:
    first = await world.service.create(caller(ALICE), **BODY, idempotency_key="one")
    second = await world.service.create(caller(ALICE), **BODY, idempotency_key="two")
    assert first.id != second.id
    assert len(await world.stored()) == 2


@pytest.mark.parametrize(
    "difference",
    [
        {"title": "Buy bread"},
        {"description": "three litres"},
        {"description": None},
        {"completed": True},
    ],
    ids=["title", "description", "no-description", "completed"],
)
async def test_the_key_with_another_body_is_refused_and_creates_nothing(
    world: World, difference: dict[str, Any]
) -> None:
    first = await world.service.create(caller(ALICE), **BODY, idempotency_key=KEY)
    with pytest.raises(IdempotencyKeyReused):
        await world.service.create(caller(ALICE), **{**BODY, **difference}, idempotency_key=KEY)
    assert await world.stored() == [first]
    # The key still belongs to the first request.
    assert await world.service.create(caller(ALICE), **BODY, idempotency_key=KEY) == first


async def test_a_default_and_an_explicit_equal_field_are_the_same_body(world: World) -> None:
    first = await world.service.create(caller(ALICE), title="x", idempotency_key=KEY)
    again = await world.service.create(
        caller(ALICE), title="x", description=None, completed=False, idempotency_key=KEY
    )
    assert again == first


async def test_users_with_the_same_key_are_independent(world: World) -> None:
    alices = await world.service.create(caller(ALICE), **BODY, idempotency_key=KEY)
    bobs = await world.service.create(caller(BOB), title="Bob's own", idempotency_key=KEY)
    assert bobs.id != alices.id
    assert (bobs.owner_id, bobs.title) == (BOB, "Bob's own")
    assert await world.service.create(caller(ALICE), **BODY, idempotency_key=KEY) == alices
    assert await world.service.create(caller(BOB), title="Bob's own", idempotency_key=KEY) == bobs
    assert await world.stored(ALICE) == [alices]
    assert await world.stored(BOB) == [bobs]


async def test_the_key_is_remembered_for_24_hours(world: World) -> None:
    first = await world.service.create(caller(ALICE), **BODY, idempotency_key=KEY)
    world.clock.set(START + IDEMPOTENCY_WINDOW - timedelta(seconds=1))
    assert await world.service.create(caller(ALICE), **BODY, idempotency_key=KEY) == first
    with pytest.raises(IdempotencyKeyReused):
        await world.service.create(caller(ALICE), title="other", idempotency_key=KEY)
    assert timedelta(hours=24) == IDEMPOTENCY_WINDOW


async def test_after_24_hours_the_key_is_fresh_again(world: World) -> None:
    first = await world.service.create(caller(ALICE), **BODY, idempotency_key=KEY)
    world.clock.set(START + timedelta(hours=24, seconds=1))
    second = await world.service.create(caller(ALICE), **BODY, idempotency_key=KEY)
    assert second.id != first.id
    assert second.created_at == START + timedelta(hours=24, seconds=1)
    assert {t.id for t in await world.stored()} == {first.id, second.id}
    # Fresh again means the new request owns it now, for its own 24 hours.
    assert await world.service.create(caller(ALICE), **BODY, idempotency_key=KEY) == second


async def test_after_24_hours_the_key_takes_another_body(world: World) -> None:
    await world.service.create(caller(ALICE), **BODY, idempotency_key=KEY)
    world.clock.set(START + timedelta(days=2))
    other = await world.service.create(caller(ALICE), title="Something else", idempotency_key=KEY)
    assert other.title == "Something else"
    assert len(await world.stored()) == 2


async def test_a_claim_whose_request_has_not_finished_is_in_use(world: World) -> None:
    await world.service.create(caller(ALICE), **BODY, idempotency_key="learn-the-fingerprint")
    fingerprint = world.store.fingerprints[-1]
    # A first request with KEY claimed it and has not recorded its task (still running, or
    # it died between the claim and the record).
    assert await world.store.claim(ALICE, KEY, fingerprint, START, IDEMPOTENCY_WINDOW) is None
    before = await world.stored()

    with pytest.raises(IdempotencyKeyInUse):
        await world.service.create(caller(ALICE), **BODY, idempotency_key=KEY)
    with pytest.raises(IdempotencyKeyReused):  # another body is refused whatever the state
        await world.service.create(caller(ALICE), title="other", idempotency_key=KEY)
    assert await world.stored() == before
    # Bob's key of the same name is his own.
    assert (await world.service.create(caller(BOB), **BODY, idempotency_key=KEY)).owner_id == BOB


async def test_once_the_first_request_records_its_task_a_retry_gets_it(world: World) -> None:
    await world.service.create(caller(ALICE), **BODY, idempotency_key="learn-the-fingerprint")
    fingerprint = world.store.fingerprints[-1]
    await world.store.claim(ALICE, KEY, fingerprint, START, IDEMPOTENCY_WINDOW)
    with pytest.raises(IdempotencyKeyInUse):
        await world.service.create(caller(ALICE), **BODY, idempotency_key=KEY)
    finished = Task(RandomIds().new_id(), ALICE, "Buy milk", "two litres", False, START, START)
    await world.tasks.for_caller(caller(ALICE)).add(finished)
    await world.store.record(ALICE, KEY, finished)
    assert await world.service.create(caller(ALICE), **BODY, idempotency_key=KEY) == finished


@pytest.mark.parametrize(
    "broken",
    [{"title": "   "}, {"title": "x" * 201}, {"description": "\x00"}],
    ids=["blank-title", "long-title", "nul-description"],
)
async def test_an_invalid_body_fails_before_the_key_is_claimed(
    world: World, broken: dict[str, Any]
) -> None:
    with pytest.raises(ValidationFailed):
        await world.service.create(caller(ALICE), **{**BODY, **broken}, idempotency_key=KEY)
    assert world.store.fingerprints == []
    assert await world.stored() == []
    # The key is still free: a corrected request with it is a first request.
    task = await world.service.create(caller(ALICE), **BODY, idempotency_key=KEY)
    assert task.title == "Buy milk"
    assert await world.stored() == [task]
