"""Register, log in, log out, /me, and every way a bearer token is refused."""

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import jwt
import psycopg
import pytest
from litestar.testing import TestClient

from entrypoints.http.app import create_app
from tests.http.support import (
    PASSWORD,
    SECRET,
    Account,
    Client,
    assert_me,
    assert_problem,
    assert_user,
    bearer,
    comparable_headers,
    error_fields,
    log_in,
    make_settings,
    mint,
    parse_timestamp,
    register,
    standard_claims,
    unsigned_token,
)

# An address of exactly 254 characters: 64 + "@" + 189.
LONGEST_EMAIL = "a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 58 + ".io"


# --- register -------------------------------------------------------------------------------


def test_register_answers_201_with_the_user_and_nothing_secret(client: Client) -> None:
    response = client.post(
        "/api/auth/register", json={"email": "ada@example.com", "password": PASSWORD}
    )

    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    body = assert_user(response.json(), email="ada@example.com")
    assert set(body) == {"id", "email", "created_at", "timezone"}
    assert "password" not in response.text.lower()
    assert "hash" not in response.text.lower()
    assert "$2b$" not in response.text


def test_register_trims_and_lowercases_the_email(client: Client) -> None:
    user = register(client, "  Ada.Lovelace@Example.COM \t")

    assert user["email"] == "ada.lovelace@example.com"
    log_in(client, "ada.lovelace@example.com")


def test_register_same_email_in_another_case_is_409(client: Client) -> None:
    register(client, "ada@example.com")

    response = client.post(
        "/api/auth/register", json={"email": " ADA@Example.com", "password": "another password"}
    )

    assert_problem(response, 409, "Email already registered")
    # The first account keeps its password.
    log_in(client, "ada@example.com", PASSWORD)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"email": "not-an-email", "password": PASSWORD}, "email", id="no-at-sign"),
        pytest.param({"email": "ada@", "password": PASSWORD}, "email", id="no-domain"),
        pytest.param({"email": "ada@exa mple.com", "password": PASSWORD}, "email", id="space"),
        pytest.param({"email": "", "password": PASSWORD}, "email", id="empty-email"),
        pytest.param({"email": "a" + LONGEST_EMAIL, "password": PASSWORD}, "email", id="255"),
        pytest.param(
            {"email": "a" * 250 + "@example.com", "password": PASSWORD}, "email", id="262"
        ),
        pytest.param({"email": "ada\x00@example.com", "password": PASSWORD}, "email", id="nul"),
        pytest.param({"email": "ada@example.com", "password": "1234567"}, "password", id="7"),
        pytest.param({"email": "ada@example.com", "password": ""}, "password", id="empty"),
        pytest.param({"email": "ada@example.com", "password": "x" * 129}, "password", id="129"),
        pytest.param(
            {"email": "ada@example.com", "password": "é" * 129}, "password", id="129-non-ascii"
        ),
        pytest.param(
            {"email": "ada@example.com", "password": "pass\x00word"}, "password", id="nul"
        ),
        pytest.param({"email": 42, "password": PASSWORD}, "email", id="email-not-string"),
        pytest.param({"email": "ada@example.com", "password": 12345678}, "password", id="int"),
    ],
)
def test_register_rejects_bad_credentials_with_422(
    client: Client, body: dict[str, Any], field: str
) -> None:
    response = client.post("/api/auth/register", json=body)

    assert field in error_fields(response)
    assert_problem(response, 422, "Validation failed")
    # Nothing was stored.
    login = client.post("/api/auth/login", json={"email": "ada@example.com", "password": PASSWORD})
    assert_problem(login, 401, "Invalid email or password")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"email": "ada@example.com"}, "password", id="missing-password"),
        pytest.param({"password": PASSWORD}, "email", id="missing-email"),
    ],
)
def test_a_missing_field_is_named_in_the_errors(
    client: Client, body: dict[str, Any], field: str
) -> None:
    response = client.post("/api/auth/register", json=body)

    assert_problem(response, 422, "Validation failed")
    assert field in error_fields(response)


# Strong passwords (zxcvbn score 2 and more) of the shortest and the longest allowed lengths.
SHORTEST_STRONG_PASSWORD = "k8#Vq2!m"
LONGEST_STRONG_PASSWORD = "".join(f"Xq7#L{n:02d}v" for n in range(16))


def test_register_accepts_the_boundaries(client: Client) -> None:
    assert len(SHORTEST_STRONG_PASSWORD) == 8
    assert len(LONGEST_STRONG_PASSWORD) == 128
    register(client, LONGEST_EMAIL, SHORTEST_STRONG_PASSWORD)
    register(client, "b@example.com", LONGEST_STRONG_PASSWORD)

    log_in(client, LONGEST_EMAIL, SHORTEST_STRONG_PASSWORD)
    log_in(client, "b@example.com", LONGEST_STRONG_PASSWORD)


def test_a_128_character_password_in_any_script_works(client: Client) -> None:
    password = "пароль密码🔑é" * 12 + "абвгдежз"  # 128 characters, far more than 128 bytes
    assert len(password) == 128
    assert len(password.encode()) > 300

    register(client, "ada@example.com", password)

    log_in(client, "ada@example.com", password)
    wrong = client.post(
        "/api/auth/login", json={"email": "ada@example.com", "password": password[:-1] + "x"}
    )
    assert_problem(wrong, 401, "Invalid email or password")


def test_every_byte_of_a_long_password_counts(client: Client) -> None:
    # 100 bytes: bcrypt alone would only see the first 72.
    password = "".join(f"Pw{n:02d}-zQ!" for n in range(10))[:72] + "tail-of-28-bytes-K9#xR2@mV7!"
    assert len(password.encode()) == 100
    register(client, "ada@example.com", password)

    for almost in [password[:72], password[:72] + "x" * 28, password[:-1]]:
        response = client.post(
            "/api/auth/login", json={"email": "ada@example.com", "password": almost}
        )
        assert_problem(response, 401, "Invalid email or password")
    log_in(client, "ada@example.com", password)


def test_register_with_malformed_json_is_400(client: Client) -> None:
    response = client.post(
        "/api/auth/register",
        content=b'{"email": "ada@example.com", "password": ',
        headers={"content-type": "application/json"},
    )

    assert_problem(response, 400)


def test_register_with_a_json_array_is_422(client: Client) -> None:
    response = client.post("/api/auth/register", json=[{"email": "ada@example.com"}])

    assert_problem(response, 422, "Validation failed")


def test_register_with_a_body_over_one_mebibyte_is_413(client: Client) -> None:
    body = b'{"email": "ada@example.com", "password": "' + b"x" * (1024 * 1024) + b'"}'

    response = client.post(
        "/api/auth/register", content=body, headers={"content-type": "application/json"}
    )

    assert_problem(response, 413)


# --- login ----------------------------------------------------------------------------------


def test_login_answers_an_auth_response(client: Client) -> None:
    user = register(client, "ada@example.com")

    response = client.post(
        "/api/auth/login", json={"email": "ada@example.com", "password": PASSWORD}
    )

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "user"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 86400
    assert isinstance(body["access_token"], str)
    assert assert_user(body["user"]) == user
    assert "password" not in response.text.lower()


def test_the_token_carries_sub_iat_exp_and_jti(client: Client) -> None:
    user = register(client, "ada@example.com")
    before = int(time.time())

    token = log_in(client, "ada@example.com")

    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert claims["sub"] == user["id"]
    assert before - 1 <= claims["iat"] <= time.time() + 1
    assert claims["exp"] == claims["iat"] + 86400
    assert isinstance(claims["jti"], str)
    assert claims["jti"]
    other = jwt.decode(log_in(client, "ada@example.com"), SECRET, algorithms=["HS256"])
    assert other["jti"] != claims["jti"]


def test_the_token_does_not_verify_with_another_secret(client: Client) -> None:
    register(client, "ada@example.com")
    token = log_in(client, "ada@example.com")

    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, "t" * 40, algorithms=["HS256"])


def test_login_email_is_case_insensitive_and_trimmed(client: Client) -> None:
    user = register(client, "ada@example.com")

    response = client.post(
        "/api/auth/login", json={"email": "  ADA@Example.Com ", "password": PASSWORD}
    )

    assert response.status_code == 200
    assert response.json()["user"] == user


def test_wrong_password_and_unknown_email_are_indistinguishable(client: Client) -> None:
    register(client, "ada@example.com")

    wrong_password = client.post(
        "/api/auth/login", json={"email": "ada@example.com", "password": "wrong password"}
    )
    unknown_email = client.post(
        "/api/auth/login", json={"email": "nobody@example.com", "password": PASSWORD}
    )

    assert_problem(wrong_password, 401, "Invalid email or password")
    assert_problem(unknown_email, 401, "Invalid email or password")
    assert wrong_password.content == unknown_email.content
    assert comparable_headers(wrong_password) == comparable_headers(unknown_email)


def test_login_with_a_password_containing_nul_is_refused_not_crashing(client: Client) -> None:
    register(client, "ada@example.com")

    for email in ["ada@example.com", "nobody@example.com"]:
        response = client.post("/api/auth/login", json={"email": email, "password": "pass\x00word"})
        assert_problem(response, 401, "Invalid email or password")


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"email": "ada@example.com"}, id="missing-password"),
        pytest.param({"password": PASSWORD}, id="missing-email"),
        pytest.param({"email": ["ada@example.com"], "password": PASSWORD}, id="email-list"),
        pytest.param("ada@example.com", id="string-body"),
    ],
)
def test_login_with_a_malformed_body_is_422(client: Client, body: Any) -> None:
    response = client.post("/api/auth/login", json=body)

    assert_problem(response, 422, "Validation failed")


def test_login_with_malformed_json_is_400(client: Client) -> None:
    response = client.post(
        "/api/auth/login", content=b"email=ada", headers={"content-type": "application/json"}
    )

    assert_problem(response, 400)


# --- me and logout --------------------------------------------------------------------------


def test_me_answers_the_caller(client: Client, alice: Account) -> None:
    response = client.get("/api/auth/me", headers=alice.headers)

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert assert_me(response.json()) == {**alice.user, "sign_in": "password"}


def test_the_bearer_scheme_is_case_insensitive(client: Client, alice: Account) -> None:
    response = client.get("/api/auth/me", headers={"Authorization": f"bearer {alice.token}"})

    assert response.status_code == 200
    assert response.json()["id"] == alice.id


def test_logout_revokes_only_the_presented_token(client: Client, alice: Account) -> None:
    other_token = log_in(client, alice.email)

    response = client.post("/api/auth/logout", headers=alice.headers)

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"message": "Logged out successfully"}
    assert_problem(client.get("/api/auth/me", headers=alice.headers), 401, "Token revoked")
    assert_problem(client.get("/api/tasks", headers=alice.headers), 401, "Token revoked")
    assert_problem(
        client.post("/api/tasks", json={"title": "x"}, headers=alice.headers),
        401,
        "Token revoked",
    )
    assert_problem(client.post("/api/auth/logout", headers=alice.headers), 401, "Token revoked")
    # Another token of the same user still works.
    still = client.get("/api/auth/me", headers=bearer(other_token))
    assert still.status_code == 200
    assert still.json()["id"] == alice.id
    assert client.get("/api/tasks", headers=bearer(other_token)).status_code == 200


def test_logout_is_seen_at_once_by_every_process(
    client: Client, alice: Account, clean_database: str
) -> None:
    with TestClient(create_app(make_settings(clean_database))) as other_process:
        assert other_process.get("/api/auth/me", headers=alice.headers).status_code == 200

        assert client.post("/api/auth/logout", headers=alice.headers).status_code == 200

        response = other_process.get("/api/auth/me", headers=alice.headers)
        assert_problem(response, 401, "Token revoked")


def test_logout_without_a_token_is_401(client: Client) -> None:
    assert_problem(client.post("/api/auth/logout"), 401, "Not authenticated")


def test_a_token_minted_elsewhere_with_only_sub_iat_exp_is_accepted(
    client: Client, alice: Account
) -> None:
    token = mint(standard_claims(alice.id))
    assert set(jwt.decode(token, SECRET, algorithms=["HS256"])) == {"sub", "iat", "exp"}

    response = client.get("/api/auth/me", headers=bearer(token))

    assert response.status_code == 200
    assert response.json() == {**alice.user, "sign_in": "password"}
    assert client.get("/api/tasks", headers=bearer(token)).status_code == 200
    # Such a token, without a jti, can be logged out too, and only it.
    assert client.post("/api/auth/logout", headers=bearer(token)).status_code == 200
    assert_problem(client.get("/api/auth/me", headers=bearer(token)), 401, "Token revoked")
    assert client.get("/api/auth/me", headers=alice.headers).status_code == 200


# --- every way a token is refused -----------------------------------------------------------


PROTECTED = [
    ("GET", "/api/auth/me"),
    ("POST", "/api/auth/logout"),
    ("GET", "/api/tasks"),
    ("POST", "/api/tasks"),
    ("GET", "/api/tasks/{id}"),
    ("PUT", "/api/tasks/{id}"),
    ("PATCH", "/api/tasks/{id}"),
    ("DELETE", "/api/tasks/{id}"),
]


def _call(client: Client, method: str, path: str, headers: dict[str, str]) -> Any:
    path = path.format(id=uuid.uuid4())
    body = {"title": "x"} if method in {"POST", "PUT", "PATCH"} and "logout" not in path else None
    return client.request(method, path, headers=headers, json=body)


@pytest.mark.parametrize(("method", "path"), PROTECTED)
@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="missing"),
        pytest.param({"Authorization": ""}, id="empty"),
        pytest.param({"Authorization": "Bearer"}, id="bearer-only"),
        pytest.param({"Authorization": "Bearer    "}, id="bearer-blank"),
        pytest.param({"Authorization": "Basic YWRhOnBhc3N3b3Jk"}, id="basic"),
        pytest.param({"Authorization": "Token abc.def.ghi"}, id="other-scheme"),
    ],
)
def test_no_bearer_token_is_not_authenticated(
    client: Client, method: str, path: str, headers: dict[str, str]
) -> None:
    response = _call(client, method, path, headers)

    assert_problem(response, 401, "Not authenticated")


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_every_protected_endpoint_refuses_a_bad_token(
    client: Client, alice: Account, method: str, path: str
) -> None:
    expired = mint(
        standard_claims(alice.id, iat=int(time.time()) - 7200, exp=int(time.time()) - 3600)
    )
    forged = mint(standard_claims(alice.id), secret="t" * 40)

    assert_problem(_call(client, method, path, bearer(expired)), 401, "Token expired")
    assert_problem(_call(client, method, path, bearer(forged)), 401, "Invalid token signature")
    assert_problem(_call(client, method, path, bearer("garbage")), 401, "Invalid token")


def test_an_expired_token_is_refused(client: Client, alice: Account) -> None:
    now = int(time.time())
    token = mint(standard_claims(alice.id, iat=now - 86400 - 60, exp=now - 60))

    assert_problem(client.get("/api/auth/me", headers=bearer(token)), 401, "Token expired")


def test_a_small_clock_leeway_is_allowed(client: Client, alice: Account) -> None:
    now = int(time.time())
    token = mint(standard_claims(alice.id, iat=now - 3600, exp=now - 5))

    response = client.get("/api/auth/me", headers=bearer(token))

    assert response.status_code == 200
    assert response.json()["id"] == alice.id


def test_a_token_signed_with_another_secret_is_refused(client: Client, alice: Account) -> None:
    token = mint(standard_claims(alice.id), secret="x" * 40)

    response = client.get("/api/auth/me", headers=bearer(token))

    assert_problem(response, 401, "Invalid token signature")


def test_an_expired_token_with_a_wrong_signature_reports_the_signature(
    client: Client, alice: Account
) -> None:
    now = int(time.time())
    token = mint(standard_claims(alice.id, iat=now - 7200, exp=now - 3600), secret="x" * 40)

    response = client.get("/api/auth/me", headers=bearer(token))

    assert_problem(response, 401, "Invalid token signature")


def _malformed_tokens(user_id: str) -> dict[str, str]:
    claims = standard_claims(user_id)
    return {
        "garbage": "garbage",
        "three-garbage-parts": "abc.def.ghi",
        "truncated": mint(claims)[:-10],
        "alg-none": unsigned_token({"alg": "none", "typ": "JWT"}, claims),
        "alg-none-signed": unsigned_token(
            {"alg": "none", "typ": "JWT"}, claims, mint(claims).rsplit(".", 1)[1]
        ),
        "hs512": mint(claims, algorithm="HS512"),
        "hs384": mint(claims, algorithm="HS384"),
        "rs256": unsigned_token({"alg": "RS256", "typ": "JWT"}, claims, "c2lnbmF0dXJl"),
        "missing-sub": mint(standard_claims(user_id, sub=None)),
        "missing-iat": mint(standard_claims(user_id, iat=None)),
        "missing-exp": mint(standard_claims(user_id, exp=None)),
        "sub-not-uuid": mint(standard_claims("alice")),
        "sub-empty": mint(standard_claims("")),
        "sub-integer": mint(standard_claims(user_id, sub=12345)),
        "exp-not-a-number": mint(standard_claims(user_id, exp="tomorrow")),
        "jti-not-a-string": mint(standard_claims(user_id, jti=42)),
    }


@pytest.mark.parametrize("case", list(_malformed_tokens(str(uuid.uuid4()))))
def test_a_malformed_token_is_invalid(client: Client, alice: Account, case: str) -> None:
    token = _malformed_tokens(alice.id)[case]

    assert_problem(client.get("/api/auth/me", headers=bearer(token)), 401, "Invalid token")
    assert_problem(client.get("/api/tasks", headers=bearer(token)), 401, "Invalid token")


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({"exp": 10**20}, id="exp-beyond-datetime"),
        pytest.param({"exp": 253402300800}, id="exp-in-year-10000"),
        pytest.param({"iat": -(10**20)}, id="iat-before-datetime"),
    ],
)
def test_a_token_with_an_out_of_range_time_claim_is_invalid_not_a_500(
    client: Client, alice: Account, claims: dict[str, int]
) -> None:
    token = mint(standard_claims(alice.id, **claims))

    assert_problem(client.get("/api/auth/me", headers=bearer(token)), 401, "Invalid token")
    assert_problem(client.post("/api/auth/logout", headers=bearer(token)), 401, "Invalid token")


def test_an_oversized_authorization_header_is_an_invalid_token(
    client: Client, alice: Account
) -> None:
    response = client.get("/api/auth/me", headers=bearer("a" * 9000))

    assert_problem(response, 401, "Invalid token")


def test_a_token_of_a_user_that_no_longer_exists_is_refused(
    client: Client, alice: Account, clean_database: str
) -> None:
    minted = mint(standard_claims(alice.id))
    with psycopg.connect(clean_database, autocommit=True) as connection:
        connection.execute("DELETE FROM users WHERE id = %s", (alice.id,))

    for token in [alice.token, minted]:
        assert_problem(client.get("/api/auth/me", headers=bearer(token)), 401, "User not found")
        assert_problem(client.get("/api/tasks", headers=bearer(token)), 401, "User not found")
        assert_problem(
            client.post("/api/auth/logout", headers=bearer(token)), 401, "User not found"
        )


def test_a_token_for_a_random_user_id_is_user_not_found(client: Client) -> None:
    token = mint(standard_claims(str(uuid.uuid4())))

    assert_problem(client.get("/api/auth/me", headers=bearer(token)), 401, "User not found")


def test_timestamps_are_utc_with_z(client: Client, alice: Account) -> None:
    created = parse_timestamp(alice.user["created_at"])

    assert created.tzinfo is not None
    assert created.utcoffset() == UTC.utcoffset(None)
    assert abs((datetime.now(UTC) - created).total_seconds()) < 60
