"""Configuration from the environment and a .env file in the working directory."""

import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import dotenv_values

MIN_SECRET_LENGTH = 32
_SECRET_FILE = "auth-secret"  # noqa: S105 - a file name
log = logging.getLogger("todo_api")


class ConfigurationError(Exception):
    """The configuration cannot work; the message names the variable to fix."""


@dataclass(frozen=True, slots=True)
class Settings:
    auth_secret: str
    database_url: str | None = None
    """None: an embedded PostgreSQL in data_dir."""
    database_url_unpooled: str | None = None
    """A direct URL to the same database, for what needs a server session of its own
    (migrations) when database_url goes through a pooler; None: database_url."""
    cors_origins: tuple[str, ...] = ("http://localhost:3000",)
    data_dir: Path = Path(".todo-data")
    bcrypt_rounds: int = 12
    pool_min_size: int = 5
    pool_max_size: int = 15
    pool_timeout_seconds: float = 5.0
    pool_max_waiting: int = 64
    """Requests that may queue for a connection; beyond them, 503 at once."""
    prepare_threshold: int | None = 5
    """Executions of a statement before it is prepared; None: never (transaction poolers)."""
    statement_timeout_ms: int = 5_000
    """statement_timeout of the requests' sessions (0: off); migrations have none."""
    lock_timeout_ms: int = 2_000
    """lock_timeout of the requests' and the migrations' sessions (0: off)."""
    idle_in_transaction_timeout_ms: int = 30_000
    """idle_in_transaction_session_timeout of the requests' sessions (0: off)."""
    previous_auth_secrets: tuple[str, ...] = ()
    """Still accepted for verification while the frontend rotates BETTER_AUTH_SECRET."""
    login_max_failures: int = 5
    login_lockout_minutes: int = 15
    auth_rate_per_minute: int = 30
    metrics_token: str | None = None
    """When set, GET /metrics needs it as a bearer token; None: there is no /metrics."""
    log_level: str = "INFO"
    log_format: str | None = None
    """"json" or "console"; None: console on a terminal, JSON elsewhere."""
    shutdown_grace_seconds: int = 10
    housekeeping_interval_seconds: int = 600
    """How often expired keys, tokens and login windows are purged, by one process of the
    service; 0: never by this process."""
    better_auth: "BetterAuthSettings | None" = None
    """None: only todo-api's own tokens are accepted."""


@dataclass(frozen=True, slots=True)
class BetterAuthSettings:
    """Where Better Auth publishes its keys, and what its tokens must say."""

    url: str
    jwks_url: str
    issuer: str
    audience: str

    @classmethod
    def at(cls, url: str) -> "BetterAuthSettings":
        """The defaults for a Better Auth served at url, as its JWT plugin sets them."""
        return cls(url=url, jwks_url=f"{url.rstrip('/')}/api/auth/jwks", issuer=url, audience=url)


def load_settings(
    environ: Mapping[str, str] | None = None, env_file: Path | None = Path(".env")
) -> Settings:
    """Reads the settings; the process environment wins over the .env file.

    With no BETTER_AUTH_SECRET, a random one is generated once and kept in the data directory.
    """
    values: dict[str, str] = {}
    if env_file is not None and env_file.is_file():
        values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    values.update(os.environ if environ is None else environ)

    data_dir = Path(values.get("TODO_DATA_DIR") or ".todo-data")
    cors_origins = tuple(
        origin.strip()
        for origin in values.get("CORS_ORIGINS", "http://localhost:3000").split(",")
        if origin.strip()
    )
    return Settings(
        auth_secret=_auth_secret(values.get("BETTER_AUTH_SECRET"), data_dir),
        database_url=values.get("DATABASE_URL") or None,
        database_url_unpooled=_unpooled_url(values),
        cors_origins=cors_origins,
        data_dir=data_dir,
        bcrypt_rounds=_integer(values, "BCRYPT_ROUNDS", 12, minimum=4, maximum=31),
        pool_min_size=_integer(values, "DATABASE_POOL_MIN", 5, minimum=1, maximum=1000),
        pool_max_size=_integer(values, "DATABASE_POOL_MAX", 15, minimum=1, maximum=1000),
        pool_max_waiting=_integer(
            values, "DATABASE_POOL_MAX_WAITING", 64, minimum=1, maximum=100_000
        ),
        prepare_threshold=_prepare_threshold(values),
        statement_timeout_ms=_milliseconds(values, "DATABASE_STATEMENT_TIMEOUT_MS", 5_000),
        lock_timeout_ms=_milliseconds(values, "DATABASE_LOCK_TIMEOUT_MS", 2_000),
        idle_in_transaction_timeout_ms=_milliseconds(
            values, "DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS", 30_000
        ),
        metrics_token=values.get("METRICS_TOKEN") or None,
        log_level=_choice(values, "LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR"))
        or "INFO",
        log_format=_choice(values, "LOG_FORMAT", None, ("json", "console")),
        shutdown_grace_seconds=_integer(
            values, "SHUTDOWN_GRACE_SECONDS", 10, minimum=0, maximum=3600
        ),
        housekeeping_interval_seconds=_integer(
            values, "HOUSEKEEPING_INTERVAL_SECONDS", 600, minimum=0, maximum=86_400
        ),
        previous_auth_secrets=_previous_secrets(values.get("BETTER_AUTH_SECRET_PREVIOUS")),
        login_max_failures=_integer(values, "LOGIN_MAX_FAILURES", 5, minimum=1, maximum=1000),
        login_lockout_minutes=_integer(
            values, "LOGIN_LOCKOUT_MINUTES", 15, minimum=1, maximum=7 * 24 * 60
        ),
        auth_rate_per_minute=_integer(
            values, "AUTH_RATE_PER_MINUTE", 30, minimum=0, maximum=1_000_000
        ),
        better_auth=_better_auth(values),
    )


def _better_auth(values: Mapping[str, str]) -> BetterAuthSettings | None:
    url = values.get("BETTER_AUTH_URL")
    if not url:
        return None
    defaults = BetterAuthSettings.at(_http_url(values, "BETTER_AUTH_URL"))
    return BetterAuthSettings(
        url=defaults.url,
        jwks_url=_http_url(values, "BETTER_AUTH_JWKS_URL") or defaults.jwks_url,
        issuer=values.get("BETTER_AUTH_ISSUER") or defaults.issuer,
        audience=values.get("BETTER_AUTH_AUDIENCE") or defaults.audience,
    )


def _http_url(values: Mapping[str, str], name: str) -> str:
    raw = values.get(name) or ""
    if raw and (urlsplit(raw).scheme not in ("http", "https") or not urlsplit(raw).netloc):
        raise ConfigurationError(f"{name} must be an http:// or https:// URL, not {raw!r}")
    return raw


def _auth_secret(configured: str | None, data_dir: Path) -> str:
    if configured is not None and configured != "":
        if len(configured) < MIN_SECRET_LENGTH:
            raise ConfigurationError(
                f"BETTER_AUTH_SECRET must be at least {MIN_SECRET_LENGTH} characters long "
                f"(it has {len(configured)})"
            )
        return configured
    secret_file = data_dir / _SECRET_FILE
    if secret_file.is_file():
        return secret_file.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    # Written whole to a private file, then linked into place: of two processes starting at
    # once, one wins and the other reads the winner's complete secret.
    draft = data_dir / f".{_SECRET_FILE}.{os.getpid()}"
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(secret + "\n")
    try:
        os.link(draft, secret_file)
    except FileExistsError:
        return secret_file.read_text().strip()
    finally:
        draft.unlink()
    log.warning(
        "BETTER_AUTH_SECRET is not set: generated one and kept it in %s. Set it to the secret "
        "the web frontend uses so that tokens work across both.",
        secret_file,
    )
    return secret


def _choice(
    values: Mapping[str, str], name: str, default: str | None, allowed: tuple[str, ...]
) -> str | None:
    raw = values.get(name)
    if not raw:
        return default
    for option in allowed:
        if raw.lower() == option.lower():
            return option
    raise ConfigurationError(f"{name} must be one of {', '.join(allowed)}, not {raw!r}")


def _unpooled_url(values: Mapping[str, str]) -> str | None:
    unpooled = values.get("DATABASE_URL_UNPOOLED") or None
    if unpooled is not None and not values.get("DATABASE_URL"):
        # The embedded database is the only one then; a direct URL to some other database
        # would have migrations run where requests never go.
        raise ConfigurationError(
            "DATABASE_URL_UNPOOLED is set but DATABASE_URL is not: set both, to the pooled and "
            "the direct URL of the same database"
        )
    return unpooled


def _prepare_threshold(values: Mapping[str, str]) -> int | None:
    if values.get("DATABASE_PREPARE_THRESHOLD", "").lower() == "off":
        return None
    return _integer(values, "DATABASE_PREPARE_THRESHOLD", 5, minimum=0, maximum=1000)


def _milliseconds(values: Mapping[str, str], name: str, default: int) -> int:
    # PostgreSQL's own bounds for its timeouts: 0 (off) to the largest 32-bit integer.
    return _integer(values, name, default, minimum=0, maximum=2_147_483_647)


def _previous_secrets(configured: str | None) -> tuple[str, ...]:
    if not configured:
        return ()
    if len(configured) < MIN_SECRET_LENGTH:
        raise ConfigurationError(
            f"BETTER_AUTH_SECRET_PREVIOUS must be at least {MIN_SECRET_LENGTH} characters long "
            f"(it has {len(configured)})"
        )
    return (configured,)


def _integer(
    values: Mapping[str, str], name: str, default: int, *, minimum: int, maximum: int
) -> int:
    raw = values.get(name)
    if raw is None or raw == "":
        return default
    try:
        number = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a whole number, not {raw!r}") from None
    if not minimum <= number <= maximum:
        raise ConfigurationError(f"{name} must be between {minimum} and {maximum}, not {number}")
    return number
