"""The technology adapters: JWT tokens (PyJWT), bcrypt passwords, email syntax, system clock."""

import asyncio
import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import jwt
import pytest

from adapters.email import EmailValidatorPolicy
from adapters.passwords import BcryptHasher
from adapters.system import RandomIds, SystemClock
from adapters.tokens import JwtTokenService
from application.errors import InvalidToken, InvalidTokenSignature, TokenExpired
from domain.errors import ValidationFailed
from domain.users import User

SECRET = "k" * 40
USER = UUID("12345678-1234-4234-8234-123456789abc")
ACCOUNT = User(
    id=USER,
    email="alice@example.com",
    password_hash="$2b$04$not-a-real-hash",
    created_at=datetime(2025, 1, 1, tzinfo=UTC),
    updated_at=datetime(2025, 1, 1, tzinfo=UTC),
    token_generation=3,
)


@pytest.fixture
def tokens() -> JwtTokenService:
    return JwtTokenService(SECRET)


def now() -> int:
    return int(time.time())


def claims(**overrides: Any) -> dict[str, Any]:
    """Valid claims of a token minted elsewhere; an override of None removes the claim."""
    issued = now()
    base: dict[str, Any] = {"sub": str(USER), "iat": issued, "exp": issued + 3600}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def mint(payload: dict[str, Any], *, secret: str = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(payload, secret, algorithm=algorithm)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def by_hand(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    return ".".join(
        [
            b64url(json.dumps(header).encode()),
            b64url(json.dumps(payload).encode()),
            b64url(signature),
        ]
    )


def signed_by_hand(header: dict[str, Any], payload: dict[str, Any]) -> str:
    """A token with a genuine HMAC-SHA256 signature under SECRET, whatever the header says."""
    signing_input = ".".join(
        [b64url(json.dumps(header).encode()), b64url(json.dumps(payload).encode())]
    )
    signature = hmac.new(SECRET.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url(signature)


# --- JwtTokenService: issue and decode --------------------------------------------------------


def test_issued_token_round_trips(tokens: JwtTokenService) -> None:
    issued_at = datetime.now(UTC).replace(microsecond=0)
    issued = tokens.issue(ACCOUNT, issued_at)
    decoded = tokens.decode(issued.token)
    assert decoded.subject == str(USER)
    assert decoded.issued_at == issued_at
    assert decoded.expires_at == issued_at + timedelta(hours=24)
    assert decoded.token_id
    assert issued.expires_in_seconds == 86_400


def test_issued_token_is_hs256_with_the_contract_claims(tokens: JwtTokenService) -> None:
    issued_at = datetime.now(UTC).replace(microsecond=0)
    token = tokens.issue(ACCOUNT, issued_at).token
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    payload = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert set(payload) == {"sub", "iat", "exp", "jti", "gen"}
    assert payload["exp"] - payload["iat"] == 86_400
    assert payload["gen"] == ACCOUNT.token_generation


def test_an_issued_token_carries_the_users_token_generation(tokens: JwtTokenService) -> None:
    issued_at = datetime.now(UTC)
    assert tokens.decode(tokens.issue(ACCOUNT, issued_at).token).generation == 3


def test_a_foreign_token_has_no_generation_unless_it_names_one(tokens: JwtTokenService) -> None:
    assert tokens.decode(mint(claims())).generation is None
    assert tokens.decode(mint(claims(gen=0))).generation == 0
    assert tokens.decode(mint(claims(gen=2**40))).generation == 2**40


@pytest.mark.parametrize("generation", [-1, 1.0, 1.5, "1", True, [1], {"n": 1}])
def test_a_generation_that_is_not_a_whole_number_of_at_least_zero_is_invalid(
    tokens: JwtTokenService, generation: object
) -> None:
    with pytest.raises(InvalidToken):
        tokens.decode(mint(claims(gen=generation)))


def test_each_issued_token_has_its_own_jti(tokens: JwtTokenService) -> None:
    at = datetime.now(UTC)
    ids = {tokens.decode(tokens.issue(ACCOUNT, at).token).token_id for _ in range(5)}
    assert len(ids) == 5


def test_a_custom_lifetime_is_honoured() -> None:
    service = JwtTokenService(SECRET, lifetime=timedelta(minutes=5))
    at = datetime.now(UTC).replace(microsecond=0)
    issued = service.issue(ACCOUNT, at)
    assert issued.expires_in_seconds == 300
    assert service.decode(issued.token).expires_at == at + timedelta(minutes=5)


def test_a_foreign_token_without_jti_is_accepted(tokens: JwtTokenService) -> None:
    decoded = tokens.decode(mint(claims()))
    assert decoded.subject == str(USER)
    assert decoded.token_id is None


def test_expired_beyond_the_leeway_is_token_expired(tokens: JwtTokenService) -> None:
    with pytest.raises(TokenExpired):
        tokens.decode(mint(claims(iat=now() - 7200, exp=now() - 60)))


def test_a_token_issued_a_day_ago_has_expired(tokens: JwtTokenService) -> None:
    token = tokens.issue(ACCOUNT, datetime.now(UTC) - timedelta(hours=24, minutes=1)).token
    with pytest.raises(TokenExpired):
        tokens.decode(token)


def test_expired_within_the_30_second_leeway_is_accepted(tokens: JwtTokenService) -> None:
    decoded = tokens.decode(mint(claims(iat=now() - 3600, exp=now() - 15)))
    assert decoded.subject == str(USER)


def test_issued_slightly_in_the_future_within_the_leeway_is_accepted(
    tokens: JwtTokenService,
) -> None:
    assert tokens.decode(mint(claims(iat=now() + 10))).subject == str(USER)


def test_issued_in_the_future_beyond_the_leeway_is_invalid(tokens: JwtTokenService) -> None:
    with pytest.raises(InvalidToken):
        tokens.decode(mint(claims(iat=now() + 600, exp=now() + 4200)))


def test_a_token_signed_with_another_secret_has_an_invalid_signature(
    tokens: JwtTokenService,
) -> None:
    with pytest.raises(InvalidTokenSignature):
        tokens.decode(mint(claims(), secret="another secret of forty characters......"))


def test_a_tampered_payload_has_an_invalid_signature(tokens: JwtTokenService) -> None:
    header, _, signature = mint(claims()).split(".")
    forged = b64url(json.dumps(claims(sub=str(uuid4()))).encode())
    with pytest.raises(InvalidTokenSignature):
        tokens.decode(f"{header}.{forged}.{signature}")


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_alg_none_is_invalid(tokens: JwtTokenService, alg: str) -> None:
    token = by_hand({"alg": alg, "typ": "JWT"}, claims())
    with pytest.raises(InvalidToken):
        tokens.decode(token)


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
@pytest.mark.parametrize("algorithm", ["HS384", "HS512"])
def test_other_hmac_algorithms_are_invalid(tokens: JwtTokenService, algorithm: str) -> None:
    with pytest.raises(InvalidToken):
        tokens.decode(mint(claims(), algorithm=algorithm))


def test_rs256_in_the_header_is_invalid(tokens: JwtTokenService) -> None:
    # The classic confusion attack: an asymmetric alg in the header over an HMAC signature.
    with pytest.raises(InvalidToken):
        tokens.decode(signed_by_hand({"alg": "RS256", "typ": "JWT"}, claims()))


def test_a_hand_signed_hs256_token_is_accepted(tokens: JwtTokenService) -> None:
    # Proves signed_by_hand makes genuine tokens, so the RS256 refusal is about the alg alone.
    assert tokens.decode(signed_by_hand({"alg": "HS256", "typ": "JWT"}, claims())).subject


@pytest.mark.parametrize("missing", ["sub", "iat", "exp"])
def test_a_missing_required_claim_is_invalid(tokens: JwtTokenService, missing: str) -> None:
    with pytest.raises(InvalidToken):
        tokens.decode(mint(claims(**{missing: None})))


@pytest.mark.parametrize(
    "bad", [{"sub": 42}, {"sub": ["a"]}, {"jti": 7}, {"iat": "yesterday"}, {"exp": "never"}]
)
def test_a_claim_of_the_wrong_type_is_invalid(tokens: JwtTokenService, bad: dict[str, Any]) -> None:
    with pytest.raises(InvalidToken):
        tokens.decode(mint(claims(**bad)))


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param({"exp": str(now() + 3600)}, id="exp-numeric-string"),
        pytest.param({"iat": str(now())}, id="iat-numeric-string"),
        pytest.param({"exp": 10**20}, id="exp-beyond-year-9999"),
        pytest.param({"iat": -(10**20)}, id="iat-before-year-1"),
    ],
)
def test_a_claim_that_is_no_usable_timestamp_is_invalid(
    tokens: JwtTokenService, bad: dict[str, Any]
) -> None:
    # "Missing or bad claim" is 401 Invalid token; anything else escapes as a 500.
    with pytest.raises(InvalidToken):
        tokens.decode(mint(claims(**bad)))


@pytest.mark.parametrize(
    "garbage",
    ["", "garbage", "a.b.c", "a.b", "Bearer abc", "é.é.é", "\x00", "eyJhbGciOiJIUzI1NiJ9"],
)
def test_something_that_is_not_a_jwt_is_invalid(tokens: JwtTokenService, garbage: str) -> None:
    with pytest.raises(InvalidToken):
        tokens.decode(garbage)


def test_token_errors_are_application_errors_not_pyjwt_ones(tokens: JwtTokenService) -> None:
    with pytest.raises(InvalidToken) as caught:
        tokens.decode("garbage")
    assert not isinstance(caught.value, jwt.PyJWTError)
    assert caught.value.__suppress_context__  # raised "from None": no PyJWT chain in logs


# --- BcryptHasher -----------------------------------------------------------------------------


@pytest.fixture
def hasher() -> BcryptHasher:
    return BcryptHasher(rounds=4)


async def test_bcrypt_hash_verifies_the_password_and_nothing_else(hasher: BcryptHasher) -> None:
    stored = await hasher.hash("correct horse")
    assert stored.startswith("$2b$04$")
    assert "correct horse" not in stored
    assert await hasher.verify("correct horse", stored)
    assert not await hasher.verify("correct horsE", stored)
    assert not await hasher.verify("", stored)


async def test_bcrypt_salts_every_hash(hasher: BcryptHasher) -> None:
    first, second = await hasher.hash("same password"), await hasher.hash("same password")
    assert first != second
    assert await hasher.verify("same password", first)
    assert await hasher.verify("same password", second)


async def test_long_passwords_count_in_full_beyond_72_bytes(hasher: BcryptHasher) -> None:
    prefix = "p" * 72
    one, other = prefix + "a" * 28, prefix + "b" * 28
    assert len(one.encode()) == len(other.encode()) == 100
    stored = await hasher.hash(one)
    assert await hasher.verify(one, stored)
    assert not await hasher.verify(other, stored)
    assert not await hasher.verify(prefix, stored)


async def test_the_73rd_byte_counts(hasher: BcryptHasher) -> None:
    stored = await hasher.hash("x" * 73)
    assert await hasher.verify("x" * 73, stored)
    assert not await hasher.verify("x" * 72, stored)
    assert not await hasher.verify("x" * 72 + "y", stored)


async def test_a_72_byte_password_is_not_confused_with_a_longer_one(hasher: BcryptHasher) -> None:
    stored = await hasher.hash("x" * 72)
    assert await hasher.verify("x" * 72, stored)
    assert not await hasher.verify("x" * 73, stored)


async def test_the_digest_of_a_long_password_is_no_password_for_it(hasher: BcryptHasher) -> None:
    # Every byte counts only if no other password opens the account. The pre-hashed form of a
    # long password is itself a valid (51-character) password: it must not verify in its place,
    # or an unsalted SHA-256 of the password, leaked elsewhere, logs in without any cracking.
    long_password = "correct horse battery staple " * 4
    digest = base64.b64encode(hashlib.sha256(long_password.encode()).digest()).decode()
    shortcut = "sha256$" + digest
    assert len(shortcut.encode()) <= 72
    assert not await hasher.verify(shortcut, await hasher.hash(long_password))
    assert not await hasher.verify(long_password, await hasher.hash(shortcut))


async def test_a_128_character_non_ascii_password_works(hasher: BcryptHasher) -> None:
    password = "ж" * 64 + "密" * 32 + "🔑" * 32  # 128 characters, 352 bytes of UTF-8
    assert len(password) == 128
    stored = await hasher.hash(password)
    assert await hasher.verify(password, stored)
    assert not await hasher.verify(password[:-1] + "🔒", stored)  # differs in the last byte only
    assert not await hasher.verify(password[:36], stored)  # the first 72 bytes alone


@pytest.mark.parametrize("stored", ["", "not-a-bcrypt-hash", "$2b$04$short", "plain$password"])
async def test_a_malformed_stored_hash_verifies_false(hasher: BcryptHasher, stored: str) -> None:
    assert await hasher.verify("password", stored) is False


async def test_bcrypt_does_not_block_the_event_loop() -> None:
    slow = BcryptHasher(rounds=10)  # some tens of milliseconds of hashing
    ticks = 0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0.001)

    running = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    before = ticks
    await slow.hash("correct horse")
    done.set()
    await running
    assert ticks - before >= 3


# --- EmailValidatorPolicy ---------------------------------------------------------------------


@pytest.fixture
def emails() -> EmailValidatorPolicy:
    return EmailValidatorPolicy()


def address_of_length(length: int) -> str:
    local = "a" * 64
    labels, remaining = [], length - len(local) - 1 - len(".com")
    while remaining > 0:
        size = min(63, remaining - (2 if remaining - 63 == 1 else 0))
        labels.append("b" * size)
        remaining -= size + 1
    address = f"{local}@{'.'.join(labels)}.com"
    assert len(address) == length
    return address


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("alice@example.com", "alice@example.com"),
        ("  Alice@Example.COM \t\n", "alice@example.com"),
        ("BOB.SMITH+todo@Mail.Example.org", "bob.smith+todo@mail.example.org"),
    ],
)
def test_email_is_trimmed_and_lowercased(
    emails: EmailValidatorPolicy, raw: str, normalised: str
) -> None:
    assert emails.normalize(raw) == normalised


@pytest.mark.parametrize(
    "raw", ["not-an-email", "", "   ", "a@b", "@example.com", "alice@", "a b@example.com"]
)
def test_email_of_bad_syntax_is_rejected_on_field_email(
    emails: EmailValidatorPolicy, raw: str
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        emails.normalize(raw)
    assert [e.field for e in caught.value.errors] == ["email"]


def test_email_of_254_characters_is_accepted_even_with_padding(
    emails: EmailValidatorPolicy,
) -> None:
    address = address_of_length(254)
    assert emails.normalize(f"  {address}  ") == address


@pytest.mark.parametrize("length", [255, 300, 1000])
def test_email_of_255_or_more_characters_is_rejected(
    emails: EmailValidatorPolicy, length: int
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        emails.normalize(address_of_length(length))
    assert [e.field for e in caught.value.errors] == ["email"]
    assert "254" in caught.value.errors[0].message


def test_email_with_nul_is_rejected(emails: EmailValidatorPolicy) -> None:
    with pytest.raises(ValidationFailed) as caught:
        emails.normalize("ali\x00ce@example.com")
    assert [e.field for e in caught.value.errors] == ["email"]


# --- the system clock and ids -----------------------------------------------------------------


def test_system_clock_is_timezone_aware_utc_and_current() -> None:
    before = datetime.now(UTC)
    reading = SystemClock().now()
    assert reading.utcoffset() == timedelta(0)
    assert before <= reading <= datetime.now(UTC)


def test_random_ids_are_distinct_version_4_uuids() -> None:
    ids = RandomIds()
    made = {ids.new_id() for _ in range(100)}
    assert len(made) == 100
    assert {u.version for u in made} == {4}
