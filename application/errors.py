"""Errors of the use cases that are not domain rules: authentication and infrastructure."""


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


class StorageUnavailable(ApplicationError):
    """The database cannot be reached right now; the request may be retried."""
