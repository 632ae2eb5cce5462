"""Configuration from the environment and .env: defaults, limits, and the generated secret."""

import stat
from pathlib import Path

import pytest

from entrypoints.settings import BetterAuthSettings, ConfigurationError, Settings, load_settings

SECRET = "s" * 40


def settings_from(tmp_path: Path, **environment: str) -> Settings:
    return load_settings({"TODO_DATA_DIR": str(tmp_path / "data"), **environment}, env_file=None)


def test_defaults_follow_the_contract(tmp_path: Path) -> None:
    settings = settings_from(tmp_path, BETTER_AUTH_SECRET=SECRET)
    assert settings.database_url is None
    assert settings.cors_origins == ("http://localhost:3000",)
    assert (settings.pool_min_size, settings.pool_max_size) == (5, 15)
    assert (settings.login_max_failures, settings.login_lockout_minutes) == (5, 15)
    assert settings.auth_rate_per_minute == 30
    assert settings.bcrypt_rounds == 12
    assert settings.prepare_threshold == 5
    assert settings.previous_auth_secrets == ()
    assert settings.better_auth is None


def test_each_variable_is_read(tmp_path: Path) -> None:
    settings = settings_from(
        tmp_path,
        BETTER_AUTH_SECRET=SECRET,
        BETTER_AUTH_SECRET_PREVIOUS="p" * 32,
        DATABASE_URL="postgresql://u@h/db",
        CORS_ORIGINS=" https://a.example , https://b.example ,",
        LOGIN_MAX_FAILURES="3",
        LOGIN_LOCKOUT_MINUTES="60",
        AUTH_RATE_PER_MINUTE="0",
        BCRYPT_ROUNDS="4",
        DATABASE_POOL_MIN="2",
        DATABASE_POOL_MAX="9",
        DATABASE_PREPARE_THRESHOLD="off",
    )
    assert settings.database_url == "postgresql://u@h/db"
    assert settings.cors_origins == ("https://a.example", "https://b.example")
    assert settings.previous_auth_secrets == ("p" * 32,)
    assert (settings.login_max_failures, settings.login_lockout_minutes) == (3, 60)
    assert settings.auth_rate_per_minute == 0
    assert (settings.bcrypt_rounds, settings.pool_min_size, settings.pool_max_size) == (4, 2, 9)
    assert settings.prepare_threshold is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("BETTER_AUTH_SECRET", "x" * 31),
        ("BETTER_AUTH_SECRET_PREVIOUS", "x" * 31),
        ("LOGIN_MAX_FAILURES", "0"),
        ("AUTH_RATE_PER_MINUTE", "-1"),
        ("BCRYPT_ROUNDS", "3"),
        ("DATABASE_POOL_MAX", "many"),
        ("DATABASE_PREPARE_THRESHOLD", "sometimes"),
        ("DATABASE_POOL_MAX_WAITING", "0"),
        ("DATABASE_POOL_MAX_WAITING", "100001"),
        ("DATABASE_POOL_MAX_WAITING", "lots"),
        ("LOG_LEVEL", "verbose"),
        ("LOG_LEVEL", "TRACE"),
        ("LOG_FORMAT", "xml"),
        ("LOG_FORMAT", "jsonl"),
        ("SHUTDOWN_GRACE_SECONDS", "-1"),
        ("SHUTDOWN_GRACE_SECONDS", "3601"),
        ("SHUTDOWN_GRACE_SECONDS", "soon"),
        ("SHUTDOWN_GRACE_SECONDS", "1.5"),
        ("HOUSEKEEPING_INTERVAL_SECONDS", "-1"),
        ("HOUSEKEEPING_INTERVAL_SECONDS", "86401"),
        ("HOUSEKEEPING_INTERVAL_SECONDS", "often"),
        ("HOUSEKEEPING_INTERVAL_SECONDS", "0.5"),
        ("DATABASE_STATEMENT_TIMEOUT_MS", "-1"),
        ("DATABASE_STATEMENT_TIMEOUT_MS", "5s"),
        ("DATABASE_STATEMENT_TIMEOUT_MS", "2147483648"),
        ("DATABASE_LOCK_TIMEOUT_MS", "-1"),
        ("DATABASE_LOCK_TIMEOUT_MS", "2.5"),
        ("DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS", "-1"),
        ("DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS", "off"),
    ],
)
def test_a_bad_value_is_refused_naming_its_variable(tmp_path: Path, name: str, value: str) -> None:
    environment = {"BETTER_AUTH_SECRET": SECRET, name: value}
    with pytest.raises(ConfigurationError, match=name):
        settings_from(tmp_path, **environment)


def test_an_unset_secret_is_generated_once_kept_private_and_reused(tmp_path: Path) -> None:
    first = settings_from(tmp_path).auth_secret
    secret_file = tmp_path / "data" / "auth-secret"
    assert len(first) >= 32
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert settings_from(tmp_path).auth_secret == first


def test_the_environment_wins_over_the_dotenv_file(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text(f"BETTER_AUTH_SECRET={SECRET}\nCORS_ORIGINS=https://from-file.example\n")
    settings = load_settings(
        {"TODO_DATA_DIR": str(tmp_path), "CORS_ORIGINS": "https://from-env.example"},
        env_file=dotenv,
    )
    assert settings.auth_secret == SECRET
    assert settings.cors_origins == ("https://from-env.example",)


def test_pool_and_observability_defaults(tmp_path: Path) -> None:
    settings = settings_from(tmp_path, BETTER_AUTH_SECRET=SECRET)
    assert settings.pool_max_waiting == 64
    assert settings.metrics_token is None
    assert settings.log_level == "INFO"
    assert settings.log_format is None  # console on a terminal, JSON elsewhere
    assert settings.shutdown_grace_seconds == 10


def test_pool_and_observability_variables_are_read(tmp_path: Path) -> None:
    settings = settings_from(
        tmp_path,
        BETTER_AUTH_SECRET=SECRET,
        DATABASE_POOL_MAX_WAITING="200",
        METRICS_TOKEN="scrape-me",
        LOG_LEVEL="DEBUG",
        LOG_FORMAT="json",
        SHUTDOWN_GRACE_SECONDS="30",
    )
    assert settings.pool_max_waiting == 200
    assert settings.metrics_token == "scrape-me"
    assert (settings.log_level, settings.log_format) == ("DEBUG", "json")
    assert settings.shutdown_grace_seconds == 30


def test_database_timeout_defaults(tmp_path: Path) -> None:
    settings = settings_from(tmp_path, BETTER_AUTH_SECRET=SECRET)
    assert settings.statement_timeout_ms == 5_000  # within the 5 s a request waits for the pool
    assert settings.lock_timeout_ms == 2_000
    assert settings.idle_in_transaction_timeout_ms == 30_000


def test_database_timeout_variables_are_read(tmp_path: Path) -> None:
    settings = settings_from(
        tmp_path,
        BETTER_AUTH_SECRET=SECRET,
        DATABASE_STATEMENT_TIMEOUT_MS="1500",
        DATABASE_LOCK_TIMEOUT_MS="0",
        DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS="60000",
    )
    assert settings.statement_timeout_ms == 1_500
    assert settings.lock_timeout_ms == 0  # off, as in PostgreSQL
    assert settings.idle_in_transaction_timeout_ms == 60_000


@pytest.mark.parametrize(
    "name",
    [
        "METRICS_TOKEN",
        "LOG_LEVEL",
        "LOG_FORMAT",
        "DATABASE_POOL_MAX_WAITING",
        "HOUSEKEEPING_INTERVAL_SECONDS",
        "DATABASE_STATEMENT_TIMEOUT_MS",
        "DATABASE_LOCK_TIMEOUT_MS",
        "DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS",
    ],
)
def test_an_empty_variable_means_its_default(tmp_path: Path, name: str) -> None:
    settings = settings_from(tmp_path, BETTER_AUTH_SECRET=SECRET, **{name: ""})
    defaults = settings_from(tmp_path, BETTER_AUTH_SECRET=SECRET)
    assert settings == defaults


@pytest.mark.parametrize(
    ("value", "level"),
    [("debug", "DEBUG"), ("Info", "INFO"), ("warning", "WARNING"), ("ERROR", "ERROR")],
)
def test_log_level_is_case_insensitive(tmp_path: Path, value: str, level: str) -> None:
    assert settings_from(tmp_path, BETTER_AUTH_SECRET=SECRET, LOG_LEVEL=value).log_level == level


@pytest.mark.parametrize(
    ("value", "log_format"), [("json", "json"), ("JSON", "json"), ("Console", "console")]
)
def test_log_format_is_json_or_console(tmp_path: Path, value: str, log_format: str) -> None:
    settings = settings_from(tmp_path, BETTER_AUTH_SECRET=SECRET, LOG_FORMAT=value)
    assert settings.log_format == log_format


def test_a_bad_log_level_names_the_variable_and_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        settings_from(tmp_path, BETTER_AUTH_SECRET=SECRET, LOG_LEVEL="loud")
    message = str(caught.value)
    assert "LOG_LEVEL" in message
    assert "'loud'" in message
    assert all(level in message for level in ("DEBUG", "INFO", "WARNING", "ERROR"))


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SHUTDOWN_GRACE_SECONDS", 0),
        ("SHUTDOWN_GRACE_SECONDS", 3600),
        ("DATABASE_POOL_MAX_WAITING", 1),
        ("DATABASE_POOL_MAX_WAITING", 100_000),
        ("HOUSEKEEPING_INTERVAL_SECONDS", 0),
        ("HOUSEKEEPING_INTERVAL_SECONDS", 86_400),
        ("DATABASE_STATEMENT_TIMEOUT_MS", 0),
        ("DATABASE_STATEMENT_TIMEOUT_MS", 2_147_483_647),
        ("DATABASE_LOCK_TIMEOUT_MS", 2_147_483_647),
        ("DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS", 0),
    ],
)
def test_the_bounds_themselves_are_accepted(tmp_path: Path, name: str, value: int) -> None:
    settings = settings_from(tmp_path, BETTER_AUTH_SECRET=SECRET, **{name: str(value)})
    attribute = {
        "SHUTDOWN_GRACE_SECONDS": "shutdown_grace_seconds",
        "DATABASE_POOL_MAX_WAITING": "pool_max_waiting",
        "HOUSEKEEPING_INTERVAL_SECONDS": "housekeeping_interval_seconds",
        "DATABASE_STATEMENT_TIMEOUT_MS": "statement_timeout_ms",
        "DATABASE_LOCK_TIMEOUT_MS": "lock_timeout_ms",
        "DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS": "idle_in_transaction_timeout_ms",
    }[name]
    assert getattr(settings, attribute) == value


def test_housekeeping_runs_every_ten_minutes_unless_told_otherwise(tmp_path: Path) -> None:
    assert settings_from(tmp_path, BETTER_AUTH_SECRET=SECRET).housekeeping_interval_seconds == 600
    settings = settings_from(
        tmp_path, BETTER_AUTH_SECRET=SECRET, HOUSEKEEPING_INTERVAL_SECONDS="60"
    )
    assert settings.housekeeping_interval_seconds == 60


# --- Better Auth ---------------------------------------------------------------------------------


def test_better_auth_url_alone_sets_the_jwks_url_issuer_and_audience(tmp_path: Path) -> None:
    settings = settings_from(
        tmp_path, BETTER_AUTH_SECRET=SECRET, BETTER_AUTH_URL="https://app.example.com"
    )
    assert settings.better_auth == BetterAuthSettings(
        url="https://app.example.com",
        jwks_url="https://app.example.com/api/auth/jwks",
        issuer="https://app.example.com",
        audience="https://app.example.com",
    )


def test_each_better_auth_variable_is_read(tmp_path: Path) -> None:
    settings = settings_from(
        tmp_path,
        BETTER_AUTH_SECRET=SECRET,
        BETTER_AUTH_URL="http://localhost:3000/",
        BETTER_AUTH_JWKS_URL="https://cdn.example.com/.well-known/jwks.json",
        BETTER_AUTH_ISSUER="https://issuer.example.com",
        BETTER_AUTH_AUDIENCE="todo-api",
    )
    assert settings.better_auth == BetterAuthSettings(
        url="http://localhost:3000/",
        jwks_url="https://cdn.example.com/.well-known/jwks.json",
        issuer="https://issuer.example.com",
        audience="todo-api",
    )


def test_the_jwks_of_a_url_with_a_trailing_slash_has_one_slash(tmp_path: Path) -> None:
    settings = settings_from(
        tmp_path, BETTER_AUTH_SECRET=SECRET, BETTER_AUTH_URL="http://localhost:3000/"
    )
    assert settings.better_auth is not None
    assert settings.better_auth.jwks_url == "http://localhost:3000/api/auth/jwks"


@pytest.mark.parametrize("name", ["BETTER_AUTH_URL", "BETTER_AUTH_JWKS_URL"])
@pytest.mark.parametrize("value", ["localhost:3000", "ftp://example.com", "https://"])
def test_a_better_auth_url_that_is_no_http_url_is_refused(
    tmp_path: Path, name: str, value: str
) -> None:
    environment = {"BETTER_AUTH_URL": "https://app.example.com", name: value}
    with pytest.raises(ConfigurationError, match=name):
        settings_from(tmp_path, BETTER_AUTH_SECRET=SECRET, **environment)


def test_without_better_auth_url_the_other_better_auth_variables_change_nothing(
    tmp_path: Path,
) -> None:
    settings = settings_from(
        tmp_path, BETTER_AUTH_SECRET=SECRET, BETTER_AUTH_JWKS_URL="https://x.example.com/jwks"
    )
    assert settings.better_auth is None
