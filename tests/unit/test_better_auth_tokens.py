"""Better Auth's tokens: the JWKS verifier on keys these tests make, the key cache with a fake
clock and a fake fetcher, and the choice between todo-api's own tokens and Better Auth's."""

import asyncio
import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from adapters.better_auth import BetterAuthTokens, JwksKeys
from adapters.tokens import JwtTokenService, TokenKinds
from application.errors import (
    IdentityProviderUnavailable,
    InvalidToken,
    InvalidTokenSignature,
    TokenExpired,
)
from application.ports import ExternalIdentity
from tests.better_auth.keys import (
    BETTER_AUTH,
    SUBJECT,
    FakeJwks,
    SigningKey,
    better_auth_claims,
    hmac_signed,
)

SECRET = "h" * 40


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


EDDSA = SigningKey("EdDSA", "key-1")


@pytest.fixture
def jwks() -> FakeJwks:
    return FakeJwks(EDDSA)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def verifier(jwks: FakeJwks, clock: FakeClock) -> BetterAuthTokens:
    return BetterAuthTokens(JwksKeys(jwks, clock=clock), issuer=BETTER_AUTH, audience=BETTER_AUTH)


# --- the verifier -----------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["EdDSA", "ES256", "ES512", "RS256", "PS256"])
async def test_a_token_of_each_algorithm_is_verified_with_its_key(algorithm: str) -> None:
    key = SigningKey(algorithm, f"{algorithm}-key")
    verifier = BetterAuthTokens(
        JwksKeys(FakeJwks(EDDSA, key)), issuer=BETTER_AUTH, audience=BETTER_AUTH
    )
    claims = better_auth_claims()

    verified = await verifier.verify(key.sign(claims))

    assert verified.subject == SUBJECT
    assert verified.token_id is None
    assert verified.generation is None
    assert verified.issued_at == datetime.fromtimestamp(claims["iat"], UTC)
    assert verified.expires_at == datetime.fromtimestamp(claims["exp"], UTC)
    assert verified.identity == ExternalIdentity(
        issuer=BETTER_AUTH, subject=SUBJECT, email="ada@example.com", email_verified=True
    )


@pytest.mark.parametrize(
    ("overrides", "verified"),
    [({"emailVerified": False}, False), ({"emailVerified": None}, False)],
    ids=["false", "absent"],
)
async def test_an_unverified_or_unsaid_email_is_not_verified(
    verifier: BetterAuthTokens, overrides: dict[str, Any], verified: bool
) -> None:
    claims = await verifier.verify(EDDSA.sign(better_auth_claims(**overrides)))
    assert claims.identity is not None
    assert claims.identity.email_verified is verified


@pytest.mark.parametrize(
    "overrides",
    [
        {"iss": "https://evil.example.com"},
        {"aud": "https://other.example.com"},
        {"iss": None},
        {"aud": None},
        {"email": None},
        {"email": ""},
        {"email": 7},
        {"sub": None},
        {"sub": ""},
        {"sub": 12345},
        {"iat": None},
        {"exp": None},
        {"iat": "1700000000"},
        {"emailVerified": "true"},
        {"iat": int(time.time()) + 3600},  # issued in the future, beyond the leeway
        {"jti": 5},
    ],
    ids=repr,
)
async def test_a_token_with_a_wrong_or_missing_claim_is_invalid(
    verifier: BetterAuthTokens, overrides: dict[str, Any]
) -> None:
    with pytest.raises(InvalidToken):
        await verifier.verify(EDDSA.sign(better_auth_claims(**overrides)))


async def test_an_expired_token_has_expired(verifier: BetterAuthTokens) -> None:
    now = int(time.time())
    with pytest.raises(TokenExpired):
        await verifier.verify(EDDSA.sign(better_auth_claims(iat=now - 1000, exp=now - 60)))


async def test_an_expiry_within_the_leeway_is_accepted(verifier: BetterAuthTokens) -> None:
    now = int(time.time())
    claims = await verifier.verify(EDDSA.sign(better_auth_claims(iat=now - 900, exp=now - 20)))
    assert claims.subject == SUBJECT


# --- verified tokens remembered ----------------------------------------------------------------


async def test_a_remembered_token_gives_the_claims_of_its_first_verification(
    verifier: BetterAuthTokens, jwks: FakeJwks, clock: FakeClock
) -> None:
    token = EDDSA.sign(better_auth_claims())

    first, again = await verifier.verify(token), await verifier.verify(token)

    fresh = BetterAuthTokens(JwksKeys(jwks, clock=clock), issuer=BETTER_AUTH, audience=BETTER_AUTH)
    assert first == again == await fresh.verify(token)
    assert list(verifier._verified) == [token]


async def test_a_remembered_token_does_not_vouch_for_another_signature(
    verifier: BetterAuthTokens,
) -> None:
    genuine = EDDSA.sign(better_auth_claims())
    await verifier.verify(genuine)
    header, payload, _ = genuine.split(".")
    impostor = SigningKey("EdDSA", EDDSA.kid).sign(better_auth_claims())

    with pytest.raises(InvalidTokenSignature):
        await verifier.verify(f"{header}.{payload}.{impostor.split('.')[2]}")


async def test_a_remembered_token_stops_working_when_its_key_is_replaced_under_its_kid(
    jwks: FakeJwks, verifier: BetterAuthTokens, clock: FakeClock
) -> None:
    token = EDDSA.sign(better_auth_claims())
    await verifier.verify(token)
    jwks.keys = [SigningKey("EdDSA", EDDSA.kid)]  # a new key under the old name

    clock.now += 600  # the set is refreshed

    with pytest.raises(InvalidTokenSignature):
        await verifier.verify(token)


async def test_a_remembered_token_is_refused_as_expired_once_it_expires(
    verifier: BetterAuthTokens,
) -> None:
    now = time.time()
    # Within the 30 s leeway for three more seconds (a slow machine has time to verify it).
    token = EDDSA.sign(better_auth_claims(iat=int(now) - 900, exp=now - 27))
    assert (await verifier.verify(token)).subject == SUBJECT

    await asyncio.sleep(max(0.0, now + 3.2 - time.time()))

    with pytest.raises(TokenExpired):
        await verifier.verify(token)


async def test_a_token_signed_by_another_key_under_a_known_kid_has_a_bad_signature(
    verifier: BetterAuthTokens,
) -> None:
    impostor = SigningKey("EdDSA", EDDSA.kid)
    with pytest.raises(InvalidTokenSignature):
        await verifier.verify(impostor.sign(better_auth_claims()))


async def test_a_tampered_token_has_a_bad_signature(verifier: BetterAuthTokens) -> None:
    header, _, signature = EDDSA.sign(better_auth_claims()).split(".")
    forged = jwt.utils.base64url_encode(
        json.dumps(better_auth_claims(sub="someone-else")).encode()
    ).decode()
    with pytest.raises(InvalidTokenSignature):
        await verifier.verify(f"{header}.{forged}.{signature}")


async def test_an_unknown_kid_has_a_bad_signature(verifier: BetterAuthTokens) -> None:
    with pytest.raises(InvalidTokenSignature):
        await verifier.verify(SigningKey("EdDSA", "nobody-knows").sign(better_auth_claims()))


async def test_a_token_that_names_another_algorithm_than_its_key_is_invalid(
    jwks: FakeJwks, verifier: BetterAuthTokens
) -> None:
    # The kid of an EdDSA key on a token that says RS256: the key decides, the token is refused.
    rsa_key = SigningKey("RS256", EDDSA.kid)
    with pytest.raises(InvalidToken):
        await verifier.verify(rsa_key.sign(better_auth_claims()))


@pytest.mark.parametrize("form", ["jwk", "pem"])
async def test_hs256_signed_with_the_public_key_text_is_refused(
    verifier: BetterAuthTokens, form: str
) -> None:
    # The classic confusion: the public key, which anyone can read, used as an HMAC secret.
    public = EDDSA.private.public_key()
    text = (
        json.dumps(EDDSA.jwk).encode()
        if form == "jwk"
        else public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )
    token = hmac_signed(better_auth_claims(), text, kid=EDDSA.kid)
    with pytest.raises(InvalidToken):
        await verifier.verify(token)
    with pytest.raises(InvalidTokenSignature):
        await TokenKinds(JwtTokenService(SECRET), better_auth=verifier).verify(token)


async def test_alg_none_is_refused(verifier: BetterAuthTokens) -> None:
    unsigned = jwt.encode(better_auth_claims(), None, algorithm="none", headers={"kid": "key-1"})
    with pytest.raises(InvalidToken):
        await verifier.verify(unsigned)
    with pytest.raises(InvalidToken):
        await TokenKinds(JwtTokenService(SECRET), better_auth=verifier).verify(unsigned)


@pytest.mark.parametrize("token", ["", "not-a-jwt", "a.b.c", "e30.e30."], ids=repr)
async def test_garbage_is_an_invalid_token(verifier: BetterAuthTokens, token: str) -> None:
    with pytest.raises(InvalidToken):
        await verifier.verify(token)


async def test_a_token_without_kid_is_invalid(verifier: BetterAuthTokens) -> None:
    token = jwt.encode(better_auth_claims(), EDDSA.private, algorithm="EdDSA")
    with pytest.raises(InvalidToken):
        await verifier.verify(token)


async def test_symmetric_keys_in_the_key_set_are_never_used(
    jwks: FakeJwks, verifier: BetterAuthTokens
) -> None:
    jwks.extra = [
        {"kty": "oct", "kid": "shared", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQ", "alg": "HS256"}
    ]
    token = hmac_signed(better_auth_claims(), b"secret-secret-secret", kid="shared")
    with pytest.raises(InvalidTokenSignature):
        await verifier.verify(token)


# --- the key cache ------------------------------------------------------------------------------


async def test_keys_are_fetched_once_and_then_served_from_the_cache(
    jwks: FakeJwks, verifier: BetterAuthTokens, clock: FakeClock
) -> None:
    for _ in range(5):
        await verifier.verify(EDDSA.sign(better_auth_claims()))
        clock.now += 60
    assert jwks.fetches == 1


async def test_an_unknown_kid_fetches_the_set_again_and_finds_a_new_key(
    jwks: FakeJwks, verifier: BetterAuthTokens, clock: FakeClock
) -> None:
    await verifier.verify(EDDSA.sign(better_auth_claims()))
    rotated = SigningKey("EdDSA", "key-2")
    jwks.keys.append(rotated)
    clock.now += 10

    assert (await verifier.verify(rotated.sign(better_auth_claims()))).subject == SUBJECT
    assert jwks.fetches == 2


async def test_unknown_kids_fetch_at_most_once_every_ten_seconds(
    jwks: FakeJwks, verifier: BetterAuthTokens, clock: FakeClock
) -> None:
    await verifier.verify(EDDSA.sign(better_auth_claims()))
    for n in range(20):
        with pytest.raises(InvalidTokenSignature):
            await verifier.verify(SigningKey("EdDSA", f"made-up-{n}").sign(better_auth_claims()))
        clock.now += 0.4
    assert jwks.fetches == 1  # the first made-up kid came 0 s after the first fetch

    clock.now += 10
    with pytest.raises(InvalidTokenSignature):
        await verifier.verify(SigningKey("EdDSA", "made-up").sign(better_auth_claims()))
    assert jwks.fetches == 2


async def test_a_key_added_while_refetching_is_held_back_is_found_after_the_limit(
    jwks: FakeJwks, verifier: BetterAuthTokens, clock: FakeClock
) -> None:
    await verifier.verify(EDDSA.sign(better_auth_claims()))
    rotated = SigningKey("EdDSA", "key-2")
    jwks.keys.append(rotated)
    clock.now += 5

    with pytest.raises(InvalidTokenSignature):
        await verifier.verify(rotated.sign(better_auth_claims()))
    clock.now += 5
    assert (await verifier.verify(rotated.sign(better_auth_claims()))).subject == SUBJECT


async def test_the_set_is_refreshed_every_ten_minutes_and_a_removed_key_stops_working(
    jwks: FakeJwks, verifier: BetterAuthTokens, clock: FakeClock
) -> None:
    await verifier.verify(EDDSA.sign(better_auth_claims()))
    jwks.keys = [SigningKey("EdDSA", "key-2")]

    clock.now += 599
    await verifier.verify(EDDSA.sign(better_auth_claims()))
    assert jwks.fetches == 1
    clock.now += 1
    with pytest.raises(InvalidTokenSignature):
        await verifier.verify(EDDSA.sign(better_auth_claims()))
    assert jwks.fetches == 2


async def test_while_better_auth_is_down_cached_keys_keep_working(
    jwks: FakeJwks, verifier: BetterAuthTokens, clock: FakeClock
) -> None:
    await verifier.verify(EDDSA.sign(better_auth_claims()))
    jwks.down = True
    clock.now += 3600  # long past the refresh: the set is asked for again, and fails

    assert (await verifier.verify(EDDSA.sign(better_auth_claims()))).subject == SUBJECT
    assert jwks.fetches == 2


async def test_while_better_auth_is_down_an_uncached_key_is_retry_later(
    jwks: FakeJwks, verifier: BetterAuthTokens, clock: FakeClock
) -> None:
    jwks.down = True
    with pytest.raises(IdentityProviderUnavailable) as caught:
        await verifier.verify(EDDSA.sign(better_auth_claims()))
    assert caught.value.retry_after_seconds >= 1
    # Held back for ten seconds: the next request does not wait for Better Auth again.
    clock.now += 1
    with pytest.raises(IdentityProviderUnavailable):
        await verifier.verify(EDDSA.sign(better_auth_claims()))
    assert jwks.fetches == 1

    jwks.down = False
    clock.now += 10
    assert (await verifier.verify(EDDSA.sign(better_auth_claims()))).subject == SUBJECT


async def test_concurrent_requests_with_a_new_kid_share_one_fetch(
    jwks: FakeJwks, verifier: BetterAuthTokens
) -> None:
    tokens = [EDDSA.sign(better_auth_claims()) for _ in range(10)]
    verified = await asyncio.gather(*(verifier.verify(token) for token in tokens))
    assert {claims.subject for claims in verified} == {SUBJECT}
    assert jwks.fetches == 1


@pytest.mark.parametrize("document", [{}, {"keys": "none"}, {"keys": [1, {"kty": "OKP"}]}])
async def test_a_set_that_is_not_one_or_has_no_usable_key_finds_no_key(
    clock: FakeClock, document: dict[str, Any]
) -> None:
    async def fetch() -> Mapping[str, Any]:
        return document

    verifier = BetterAuthTokens(
        JwksKeys(fetch, clock=clock), issuer=BETTER_AUTH, audience=BETTER_AUTH
    )
    with pytest.raises((InvalidTokenSignature, IdentityProviderUnavailable)):
        await verifier.verify(EDDSA.sign(better_auth_claims()))


# --- todo-api's own tokens and Better Auth's, side by side ------------------------------------


async def test_own_tokens_never_wait_on_better_auth(
    jwks: FakeJwks, verifier: BetterAuthTokens
) -> None:
    jwks.down = True
    own = JwtTokenService(SECRET)
    token = jwt.encode(
        {"sub": SUBJECT, "iat": int(time.time()), "exp": int(time.time()) + 60},
        SECRET,
        algorithm="HS256",
    )
    assert (await TokenKinds(own, better_auth=verifier).verify(token)).subject == SUBJECT
    assert jwks.fetches == 0


async def test_without_better_auth_its_tokens_are_invalid() -> None:
    with pytest.raises(InvalidToken):
        await TokenKinds(JwtTokenService(SECRET)).verify(EDDSA.sign(better_auth_claims()))


async def test_with_better_auth_its_tokens_go_to_its_verifier(verifier: BetterAuthTokens) -> None:
    claims = await TokenKinds(JwtTokenService(SECRET), better_auth=verifier).verify(
        EDDSA.sign(better_auth_claims())
    )
    assert claims.identity is not None
    assert claims.identity.subject == SUBJECT
