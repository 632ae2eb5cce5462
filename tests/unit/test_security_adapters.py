"""Hardened adapters: JWT key rotation and time claims, the bounded bcrypt hasher, the bounded
zxcvbn meter."""

import asyncio
import os
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import bcrypt
import jwt
import pytest
from zxcvbn import zxcvbn

from adapters import password_strength
from adapters.password_strength import ZxcvbnStrengthMeter
from adapters.passwords import HASHING_NICENESS, BcryptHasher
from adapters.tokens import JwtTokenService
from application.errors import (
    InvalidToken,
    InvalidTokenSignature,
    RetryLater,
    ServerBusy,
    TokenExpired,
)
from domain.users import User

CURRENT = "c" * 40
OLD = "o" * 40
UNKNOWN = "u" * 40
USER = UUID("12345678-1234-4234-8234-123456789abc")
ACCOUNT = User(
    id=USER,
    email="alice@example.com",
    password_hash="$2b$04$not-a-real-hash",
    created_at=datetime(2025, 1, 1, tzinfo=UTC),
    updated_at=datetime(2025, 1, 1, tzinfo=UTC),
    token_generation=3,
)


def now() -> int:
    return int(time.time())


def mint(secret: str, **overrides: Any) -> str:
    issued = now()
    payload: dict[str, Any] = {"sub": str(USER), "iat": issued, "exp": issued + 3600}
    payload.update(overrides)
    return jwt.encode(payload, secret, algorithm="HS256")


@pytest.fixture
def rotated() -> JwtTokenService:
    return JwtTokenService(CURRENT, previous_secrets=[OLD])


# --- JwtTokenService: key rotation ------------------------------------------------------------


def test_a_token_signed_with_the_previous_secret_still_decodes(rotated: JwtTokenService) -> None:
    issued_at = datetime.now(UTC).replace(microsecond=0)
    before_rotation = JwtTokenService(OLD).issue(ACCOUNT, issued_at).token
    claims = rotated.decode(before_rotation)
    assert claims.subject == str(USER)
    assert claims.issued_at == issued_at


def test_a_foreign_token_signed_with_the_previous_secret_decodes(rotated: JwtTokenService) -> None:
    assert rotated.decode(mint(OLD)).subject == str(USER)


def test_without_the_previous_secret_an_old_token_is_refused() -> None:
    with pytest.raises(InvalidTokenSignature):
        JwtTokenService(CURRENT).decode(mint(OLD))


def test_new_tokens_are_signed_with_the_current_secret_only(rotated: JwtTokenService) -> None:
    token = rotated.issue(ACCOUNT, datetime.now(UTC)).token
    assert jwt.decode(token, CURRENT, algorithms=["HS256"])["sub"] == str(USER)
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, OLD, algorithms=["HS256"])
    with pytest.raises(InvalidTokenSignature):
        JwtTokenService(OLD).decode(token)
    assert JwtTokenService(CURRENT).decode(token).subject == str(USER)


def test_several_previous_secrets_are_all_accepted() -> None:
    tokens = JwtTokenService(CURRENT, previous_secrets=[OLD, "p" * 40])
    assert tokens.decode(mint("p" * 40)).subject == str(USER)
    assert tokens.decode(mint(OLD)).subject == str(USER)


def test_a_token_signed_with_an_unknown_secret_has_an_invalid_signature(
    rotated: JwtTokenService,
) -> None:
    with pytest.raises(InvalidTokenSignature):
        rotated.decode(mint(UNKNOWN))


def test_an_expired_token_of_the_previous_secret_is_expired_not_forged(
    rotated: JwtTokenService,
) -> None:
    with pytest.raises(TokenExpired):
        rotated.decode(mint(OLD, iat=now() - 7200, exp=now() - 120))


def test_the_previous_secret_gets_every_check_of_the_current_one(
    rotated: JwtTokenService,
) -> None:
    with pytest.raises(InvalidToken):
        rotated.decode(mint(OLD, iat=now() + 600, exp=now() + 4200))
    with pytest.raises(InvalidToken):
        rotated.decode(jwt.encode({"sub": str(USER), "exp": now() + 60}, OLD, algorithm="HS256"))
    with pytest.raises(InvalidToken):
        rotated.decode(mint(OLD, sub=42))


# --- JwtTokenService: verified tokens remembered ------------------------------------------------


def test_a_remembered_token_is_refused_as_expired_once_it_expires() -> None:
    service = JwtTokenService(CURRENT)
    # Within the 30 s leeway for one more second.
    token = mint(CURRENT, iat=time.time() - 60, exp=time.time() - 29)
    assert service.decode(token).subject == str(USER)

    time.sleep(1.2)

    with pytest.raises(TokenExpired):
        service.decode(token)


def test_remembering_tokens_gives_the_same_claims_as_decoding_them_afresh() -> None:
    service = JwtTokenService(CURRENT)
    token = mint(CURRENT, jti="the-id")

    first, again = service.decode(token), service.decode(token)

    assert first == again == JwtTokenService(CURRENT).decode(token)


def test_a_remembered_token_does_not_vouch_for_another_signature() -> None:
    service = JwtTokenService(CURRENT)
    genuine = mint(CURRENT, jti="the-id")
    service.decode(genuine)
    header, payload, _ = genuine.split(".")
    forged = f"{header}.{payload}.{mint(UNKNOWN, jti='the-id').split('.')[2]}"

    with pytest.raises(InvalidTokenSignature):
        service.decode(forged)


def test_the_service_remembers_a_bounded_number_of_tokens(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("adapters.tokens.VERIFIED_TOKENS_KEPT", 3)
    service = JwtTokenService(CURRENT)
    tokens = [mint(CURRENT, jti=f"token-{n}") for n in range(5)]
    for token in tokens:
        service.decode(token)

    assert list(service._verified) == tokens[2:]  # the least recently used went first
    service.decode(tokens[2])
    service.decode(mint(CURRENT, jti="token-5"))
    assert list(service._verified)[:2] == [tokens[4], tokens[2]]


# --- JwtTokenService: nbf and iat -------------------------------------------------------------


def test_nbf_in_the_future_beyond_the_leeway_is_invalid(rotated: JwtTokenService) -> None:
    with pytest.raises(InvalidToken):
        rotated.decode(mint(CURRENT, nbf=now() + 120))
    with pytest.raises(InvalidToken):
        rotated.decode(mint(CURRENT, nbf=now() + 45))


def test_nbf_within_the_leeway_or_in_the_past_is_accepted(rotated: JwtTokenService) -> None:
    assert rotated.decode(mint(CURRENT, nbf=now() + 15)).subject == str(USER)
    assert rotated.decode(mint(CURRENT, nbf=now() - 60)).subject == str(USER)


def test_nbf_that_is_no_number_is_invalid(rotated: JwtTokenService) -> None:
    with pytest.raises(InvalidToken):
        rotated.decode(mint(CURRENT, nbf="tomorrow"))


def test_iat_in_the_future_beyond_the_leeway_is_invalid(rotated: JwtTokenService) -> None:
    with pytest.raises(InvalidToken):
        rotated.decode(mint(CURRENT, iat=now() + 45, exp=now() + 3600))


def test_iat_in_the_future_within_the_leeway_is_accepted(rotated: JwtTokenService) -> None:
    assert rotated.decode(mint(CURRENT, iat=now() + 15)).subject == str(USER)


# --- BcryptHasher: bounded concurrency --------------------------------------------------------

# A cost-10 bcrypt hash of "slow one": verifying it keeps a worker busy for a tenth of a
# second or more, while the hasher's own hashes (cost 4) take a millisecond.
SLOW_HASH = "$2b$10$aDx/bkZ1aE0bE.hhLGWmjOotKSqmC/P23DQaQT3jwWweWU1OPEvX2"


async def until(condition: Callable[[], bool], *, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition never became true"
        await asyncio.sleep(0)


def started(work: Coroutine[Any, Any, Any]) -> "asyncio.Task[Any]":
    return asyncio.ensure_future(work)


@pytest.fixture
def bounded() -> BcryptHasher:
    return BcryptHasher(rounds=4, concurrency=1, queue=1)


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice values are Linux's")
async def test_hashing_runs_at_a_lower_cpu_priority_than_the_requests(
    bounded: BcryptHasher, monkeypatch: pytest.MonkeyPatch
) -> None:
    niceness: list[int] = []
    checkpw = bcrypt.checkpw

    def observed_checkpw(password: bytes, hashed: bytes) -> bool:
        niceness.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        return checkpw(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", observed_checkpw)
    hashed = await bounded.hash("correct horse")

    assert await bounded.verify("correct horse", hashed)
    assert niceness == [min(19, os.getpriority(os.PRIO_PROCESS, 0) + HASHING_NICENESS)]


async def test_hashing_works_where_the_priority_cannot_be_lowered(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def forbidden(*_: object) -> None:
        raise PermissionError("not allowed here")

    monkeypatch.setattr(os, "setpriority", forbidden)
    hasher = BcryptHasher(rounds=4, concurrency=1)

    assert await hasher.verify("correct horse", await hasher.hash("correct horse"))
    assert any("keep their priority" in message for message in caplog.messages)


async def test_nothing_waits_on_an_idle_hasher(bounded: BcryptHasher) -> None:
    assert bounded.waiting == 0
    await bounded.hash("correct horse")
    assert bounded.waiting == 0


@pytest.mark.parametrize("third", ["hash", "verify"])
async def test_past_the_running_and_the_queued_work_a_call_is_refused_at_once(
    bounded: BcryptHasher, third: str
) -> None:
    running = started(bounded.verify("slow one", SLOW_HASH))
    queued = started(bounded.hash("queued password"))
    await until(lambda: bounded.waiting == 1)

    refused_at = time.monotonic()
    with pytest.raises(ServerBusy) as caught:
        if third == "hash":
            await bounded.hash("one too many")
        else:
            await bounded.verify("one too many", SLOW_HASH)
    assert time.monotonic() - refused_at < 0.05  # no waiting for the slow verification
    assert isinstance(caught.value, RetryLater)
    assert caught.value.retry_after_seconds >= 1
    assert not running.done()

    assert await running is True
    stored = await queued
    assert await bounded.verify("queued password", stored)
    assert bounded.waiting == 0


async def test_after_the_rush_hashing_works_again(bounded: BcryptHasher) -> None:
    running = started(bounded.verify("slow one", SLOW_HASH))
    queued = started(bounded.hash("queued password"))
    await until(lambda: bounded.waiting == 1)
    with pytest.raises(ServerBusy):
        await bounded.hash("one too many")
    await asyncio.gather(running, queued)

    stored = await bounded.hash("correct horse")
    assert await bounded.verify("correct horse", stored)
    # The refusal took no place in the queue: two at once are admitted again.
    both = await asyncio.gather(bounded.hash("first"), bounded.hash("second"))
    assert all(h.startswith("$2b$04$") for h in both)


async def test_waiting_reports_the_queued_work() -> None:
    hasher = BcryptHasher(rounds=4, concurrency=1, queue=3)
    running = started(hasher.verify("slow one", SLOW_HASH))
    await asyncio.sleep(0)
    assert hasher.waiting == 0  # running is not waiting
    queued = [started(hasher.hash(f"queued {i}")) for i in range(3)]
    await until(lambda: hasher.waiting == 3)  # four admitted, one of them running
    assert not running.done()
    with pytest.raises(ServerBusy):
        await hasher.hash("one too many")
    await asyncio.gather(running, *queued)
    assert hasher.waiting == 0


async def test_a_cancelled_queued_hash_frees_its_place(bounded: BcryptHasher) -> None:
    running = started(bounded.verify("slow one", SLOW_HASH))
    queued = started(bounded.hash("queued password"))
    await until(lambda: bounded.waiting == 1)
    queued.cancel()
    with pytest.raises(asyncio.CancelledError):
        await queued
    assert bounded.waiting == 0
    replacement = started(bounded.hash("replacement"))  # admitted, not refused
    await until(lambda: bounded.waiting == 1)
    assert await running is True
    assert await bounded.verify("replacement", await replacement)


async def test_concurrency_lets_that_many_hashes_run_side_by_side() -> None:
    hasher = BcryptHasher(rounds=4, concurrency=2, queue=0)
    first = started(hasher.verify("slow one", SLOW_HASH))
    second = started(hasher.verify("slow one", SLOW_HASH))
    await asyncio.sleep(0)  # both start: neither waits for the other
    assert hasher.waiting == 0
    with pytest.raises(ServerBusy):
        await hasher.hash("third")
    assert await first is True
    assert await second is True


# --- ZxcvbnStrengthMeter ----------------------------------------------------------------------


@pytest.fixture
def meter() -> ZxcvbnStrengthMeter:
    return ZxcvbnStrengthMeter()


@pytest.mark.parametrize("password", ["12345678", "password1", "qwertyuiop", "iloveyou"])
async def test_a_common_password_gets_advice(meter: ZxcvbnStrengthMeter, password: str) -> None:
    advice = await meter.weakness(password, [])
    assert isinstance(advice, str)
    assert advice.strip()


@pytest.mark.parametrize(
    "password", ["correct horse battery staple", "purple elephant umbrella", "Tq7#mZ2x"]
)
async def test_a_strong_password_gets_no_advice(meter: ZxcvbnStrengthMeter, password: str) -> None:
    assert await meter.weakness(password, ["alice@example.com"]) is None


@pytest.mark.parametrize(
    "password",
    [
        "zbigniew.wojtaszek@example.com",
        "Zbigniew.Wojtaszek@Example.com",
        "zbigniew.wojtaszek@example.com2024",
    ],
)
async def test_a_password_made_of_the_email_is_weak(
    meter: ZxcvbnStrengthMeter, password: str
) -> None:
    email = "zbigniew.wojtaszek@example.com"
    assert await meter.weakness(password, []) is None  # strong to someone who knows nothing
    advice = await meter.weakness(password, [email])
    assert advice


async def test_a_128_character_password_can_be_measured(meter: ZxcvbnStrengthMeter) -> None:
    # zxcvbn refuses more than 72 characters by default; the contract allows 128.
    assert await meter.weakness("correct horse battery staple " * 4 + "x" * 12, []) is None


async def test_a_higher_minimum_score_refuses_more(meter: ZxcvbnStrengthMeter) -> None:
    assert await meter.weakness("Tq7#mZ2x", []) is None
    assert await ZxcvbnStrengthMeter(min_score=3).weakness("Tq7#mZ2x", [])


@pytest.fixture
def frequent_thread_switches() -> Iterator[None]:
    """Makes the interpreter switch threads as often as it can, so that races show at once."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


@pytest.mark.usefixtures("frequent_thread_switches")
async def test_concurrent_checks_each_use_their_own_email() -> None:
    # Registrations of different people are checked at the same time, in worker threads.
    # zxcvbn keeps the user inputs of a check in a module-wide dictionary: unless checks are
    # serialised, one check can run against another person's email and pass. Each meter runs
    # one check at a time; several meters (one per service) share the module.
    meters = [ZxcvbnStrengthMeter(queue=10) for _ in range(4)]
    emails = [f"zbigniew.wojtaszek{i}@example.com" for i in range(40)]
    advice = await asyncio.gather(
        *(meters[i % len(meters)].weakness(email, [email]) for i, email in enumerate(emails))
    )
    accepted = [email for email, said in zip(emails, advice, strict=True) if said is None]
    assert accepted == []


class HeldChecks:
    """zxcvbn made to wait for the test before it measures, so that a check stays running."""

    def __init__(self) -> None:
        self.released = threading.Event()
        self.entered = 0

    def __call__(self, password: str, **options: Any) -> dict[str, Any]:
        self.entered += 1
        assert self.released.wait(WAIT_FOR_A_HELD_CHECK), "the test never released the check"
        result: dict[str, Any] = zxcvbn(password, **options)
        return result


WAIT_FOR_A_HELD_CHECK = 10.0
WEAK = "password1"


async def at_once(check: Coroutine[Any, Any, str | None]) -> str | None:
    """The check, given a second at most: one that was admitted fails the test quickly
    instead of waiting for the held check."""
    return await asyncio.wait_for(check, timeout=1.0)


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> Iterator[HeldChecks]:
    checks = HeldChecks()
    monkeypatch.setattr(password_strength, "zxcvbn", checks)
    yield checks
    checks.released.set()  # a failed test must not leave a thread waiting


async def test_nothing_waits_on_an_idle_meter() -> None:
    meter = ZxcvbnStrengthMeter(queue=1)
    assert meter.waiting == 0
    assert await meter.weakness(WEAK, [])
    assert meter.waiting == 0


async def test_past_the_running_and_the_queued_checks_a_check_is_refused_at_once(
    held: HeldChecks,
) -> None:
    meter = ZxcvbnStrengthMeter(queue=2)
    admitted = [started(meter.weakness(WEAK, [])) for _ in range(3)]
    await until(lambda: held.entered == 1 and meter.waiting == 2)

    refused_at = time.monotonic()
    for _ in range(5):
        with pytest.raises(ServerBusy) as caught:
            await at_once(meter.weakness("correct horse battery staple", []))
        assert isinstance(caught.value, RetryLater)
        assert caught.value.retry_after_seconds >= 1
    assert time.monotonic() - refused_at < 0.05  # no waiting for the held check
    assert not any(check.done() for check in admitted)
    assert meter.waiting == 2  # the refused ones took no place

    held.released.set()
    advice = await asyncio.gather(*admitted)
    assert all(advice)  # each admitted check measured its password
    assert held.entered == 3
    assert meter.waiting == 0


async def test_after_the_rush_checks_are_admitted_again(held: HeldChecks) -> None:
    meter = ZxcvbnStrengthMeter(queue=1)
    admitted = [started(meter.weakness(WEAK, [])) for _ in range(2)]
    await until(lambda: meter.waiting == 1)
    with pytest.raises(ServerBusy):
        await at_once(meter.weakness(WEAK, []))
    held.released.set()
    await asyncio.gather(*admitted)

    assert await meter.weakness("correct horse battery staple", []) is None
    # As many as before are admitted at once: running one, waiting one.
    both = await asyncio.gather(meter.weakness(WEAK, []), meter.weakness(WEAK, []))
    assert all(both)
    assert meter.waiting == 0


async def test_a_cancelled_waiting_check_frees_its_place(held: HeldChecks) -> None:
    meter = ZxcvbnStrengthMeter(queue=1)
    running = started(meter.weakness(WEAK, []))
    waiting = started(meter.weakness(WEAK, []))
    await until(lambda: held.entered == 1 and meter.waiting == 1)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert meter.waiting == 0
    replacement = started(meter.weakness("correct horse battery staple", []))  # not refused
    await until(lambda: meter.waiting == 1)

    held.released.set()
    assert await running
    assert await replacement is None
    assert held.entered == 2  # the cancelled check never ran
    assert meter.waiting == 0


async def test_a_cancelled_running_check_keeps_its_turn_until_zxcvbn_is_done(
    held: HeldChecks,
) -> None:
    meter = ZxcvbnStrengthMeter(queue=0)
    running = started(meter.weakness(WEAK, []))
    await until(lambda: held.entered == 1)
    running.cancel()
    await asyncio.sleep(0.01)
    # The thread is still measuring: a second check would run beside it.
    with pytest.raises(ServerBusy):
        await at_once(meter.weakness(WEAK, []))

    held.released.set()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert await meter.weakness(WEAK, [])
