"""What handlers are given: the caller's token and address, the use cases, the current user."""

from collections.abc import AsyncIterator
from typing import Any

from litestar import Request
from litestar.di import NamedDependency, Provide

from application.accounts import AccountService
from application.errors import InvalidToken
from domain.users import User
from entrypoints.bootstrap import Services, UseCases

MAX_AUTHORIZATION_HEADER = 8 * 1024


def bearer_token(request: Request[Any, Any, Any]) -> str | None:
    """The token of an `Authorization: Bearer` header; None when there is none to speak of."""
    header = request.headers.get("authorization")
    if not header:
        return None
    if len(header) > MAX_AUTHORIZATION_HEADER:
        raise InvalidToken()  # refused without decoding it
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def client_address(request: Request[Any, Any, Any]) -> str | None:
    """The peer's address (the proxy's, unless the server is told to trust its headers)."""
    return request.client.host if request.client else None


def services_of(request: Request[Any, Any, Any]) -> Services:
    services: Services = request.app.state.services
    return services


def provide_accounts(request: Request[Any, Any, Any]) -> AccountService:
    return services_of(request).accounts


async def provide_current_user(
    request: Request[Any, Any, Any], accounts: NamedDependency[AccountService]
) -> User:
    return _known(request, await accounts.authenticate(bearer_token(request)))


def _known(request: Request[Any, Any, Any], user: User) -> User:
    # The scope's state outlives the handler: the request log line names the user.
    request.scope.setdefault("state", {})["user_id"] = str(user.id)
    return user


async def provide_unit_of_work(request: Request[Any, Any, Any]) -> AsyncIterator[UseCases]:
    """The request's unit of work: one connection, one transaction, committed before the
    answer is sent (rolled back when the handler raises)."""
    async with services_of(request).one_transaction() as use_cases:
        yield use_cases


async def provide_current_user_in_unit_of_work(
    request: Request[Any, Any, Any], work: NamedDependency[UseCases]
) -> User:
    return _known(request, await work.accounts.authenticate(bearer_token(request)))


AUTHENTICATED = {"current_user": Provide(provide_current_user)}
# Task requests authenticate and do their work on one connection: one check-out of the pool
# instead of one per query. (Auth routes hash passwords, so they never hold a connection.)
AUTHENTICATED_UNIT_OF_WORK = {
    "work": Provide(provide_unit_of_work),
    "current_user": Provide(provide_current_user_in_unit_of_work),
}
APP_DEPENDENCIES = {
    "accounts": Provide(provide_accounts, sync_to_thread=False),
}
