"""Configuration from the environment and .env: defaults, limits, and the generated secret."""

import stat
from pathlib import Path

import pytest

from entrypoints.settings import ConfigurationError, Settings, load_settings

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
