"""The one table from application errors to HTTP statuses and the human-readable details the
contract fixes. The HTTP layer answers with it; the command line prints its details."""

from application.errors import (
    EmailNotVerifiedForLinking,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    IdentityProviderUnavailable,
    InvalidCredentials,
    InvalidToken,
    InvalidTokenSignature,
    NotAuthenticated,
    PasswordlessAccount,
    ServerBusy,
    StatementTimedOut,
    StorageUnavailable,
    TokenExpired,
    TokenRevoked,
    TooManyAttempts,
    TooManyFailedLogins,
    TransactionConflict,
    UserNotFound,
    WrongPassword,
)
from domain.errors import (
    EmailAlreadyRegistered,
    TaskAccessDenied,
    TaskChanged,
    TaskNotFound,
    ValidationFailed,
    WeakPassword,
)

# The single table from application errors to HTTP answers.
PROBLEMS: dict[type[Exception], tuple[int, str]] = {
    NotAuthenticated: (401, "Not authenticated"),
    TokenExpired: (401, "Token expired"),
    InvalidTokenSignature: (401, "Invalid token signature"),
    InvalidToken: (401, "Invalid token"),
    TokenRevoked: (401, "Token revoked"),
    UserNotFound: (401, "User not found"),
    InvalidCredentials: (401, "Invalid email or password"),
    WrongPassword: (401, "Invalid password"),
    TaskAccessDenied: (403, "Access denied: task belongs to another user"),
    TaskNotFound: (404, "Task not found"),
    TaskChanged: (412, "The task has changed since the version in If-Match"),
    EmailAlreadyRegistered: (409, "Email already registered"),
    EmailNotVerifiedForLinking: (
        409,
        "An account with this email already exists; verify the email in Better Auth to link it",
    ),
    PasswordlessAccount: (409, "This account signs in through Better Auth"),
    IdempotencyKeyInUse: (409, "A request with this Idempotency-Key is still in progress"),
    IdempotencyKeyReused: (422, "Idempotency-Key was already used with a different request"),
    WeakPassword: (422, "Password is too weak"),
    ValidationFailed: (422, "Validation failed"),
    TooManyFailedLogins: (429, "Too many failed logins for this email; retry later"),
    TooManyAttempts: (429, "Too many attempts from this address; retry later"),
    ServerBusy: (503, "The server is busy; retry shortly"),
    StorageUnavailable: (503, "The database is unavailable; retry shortly"),
    StatementTimedOut: (503, "The database took too long to answer; retry shortly"),
    TransactionConflict: (503, "The request conflicted with a concurrent one; retry shortly"),
    IdentityProviderUnavailable: (
        503,
        "Better Auth cannot be reached to verify this token; retry shortly",
    ),
}
