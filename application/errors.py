"""Errors of the use cases that are not domain rules: authentication and infrastructure."""

from domain.errors import FieldError, ValidationFailed


class ApplicationError(Exception):
    pass


class AuthenticationFailed(ApplicationError):
    """Base of every reason a bearer token or a login is refused (all become 401)."""


class NotAuthenticated(AuthenticationFailed):
    pass


class InvalidCredentials(AuthenticationFailed):
    """Unknown email or wrong password: deliberately indistinguishable."""


class TokenExpired(AuthenticationFailed):
    pass


class InvalidTokenSignature(AuthenticationFailed):
    pass


class InvalidToken(AuthenticationFailed):
    pass


class TokenRevoked(AuthenticationFailed):
    pass


class UserNotFound(AuthenticationFailed):
    """The token is genuine but its user no longer exists."""


class WrongPassword(AuthenticationFailed):
    """The current password given to confirm a sensitive change is wrong."""


class EmailNotVerifiedForLinking(ApplicationError):
    """A Better Auth user's first token names the email of an existing account, and Better Auth
    does not say the address is verified: linking would hand that account to whoever typed it."""


class PasswordlessAccount(ApplicationError):
    """The account signs in through Better Auth and has no password to change."""


class IdempotencyKeyReused(ValidationFailed):
    """The Idempotency-Key was used before with a different request."""

    def __init__(self) -> None:
        super().__init__([FieldError("Idempotency-Key", "Already used with a different request")])


class IdempotencyKeyInUse(ApplicationError):
    """A request with the same Idempotency-Key has not finished yet."""


class RetryLater(ApplicationError):
    """The request may succeed if repeated after retry_after_seconds."""

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(f"retry after {retry_after_seconds} s")
        self.retry_after_seconds = max(1, retry_after_seconds)


class TooManyFailedLogins(RetryLater):
    """Too many failed logins for one email: it is locked until its window passes."""


class TooManyAttempts(RetryLater):
    """Too many login or register attempts from one client address."""


class ServerBusy(RetryLater):
    """Too many password hashes are already running or waiting."""


class IdentityProviderUnavailable(RetryLater):
    """Better Auth's keys are needed to verify a token and cannot be fetched right now."""


class StorageUnavailable(RetryLater):
    """The database cannot be reached right now."""

    def __init__(self, retry_after_seconds: int = 5) -> None:
        super().__init__(retry_after_seconds)


class StatementTimedOut(StorageUnavailable):
    """A statement ran past the database's statement_timeout or lock_timeout: the database is
    up, but slower than a request may wait for it."""


class TransactionConflict(StorageUnavailable):
    """The database aborted a transaction for a conflict with a concurrent one (a deadlock, a
    serialization failure). Nothing of it took effect; a fresh attempt usually succeeds."""
