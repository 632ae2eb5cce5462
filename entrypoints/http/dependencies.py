"""What handlers are given: the caller's token and address, the use cases, the current user."""

from typing import Any

from litestar import Request
from litestar.di import NamedDependency, Provide

from application.accounts import AccountService
from application.errors import InvalidToken
from application.tasks import TaskService
from domain.users import User
from entrypoints.bootstrap import Services

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


def provide_tasks(
    request: Request[Any, Any, Any], current_user: NamedDependency[User]
) -> TaskService:
    """The task use cases, handed out once the caller is authenticated. (Depending on the
    user also spares every request a task group: Litestar resolves independent dependencies
    concurrently, in tasks of their own.)"""
    return services_of(request).tasks


async def provide_current_user(request: Request[Any, Any, Any]) -> User:
    accounts = services_of(request).accounts
    return _known(request, await accounts.authenticate(bearer_token(request)))


def _known(request: Request[Any, Any, Any], user: User) -> User:
    # The scope's state outlives the handler: the request log line names the user.
    request.scope.setdefault("state", {})["user_id"] = str(user.id)
    return user


AUTHENTICATED = {"current_user": Provide(provide_current_user)}
TASKS = AUTHENTICATED | {"tasks": Provide(provide_tasks, sync_to_thread=False)}
APP_DEPENDENCIES = {
    "accounts": Provide(provide_accounts, sync_to_thread=False),
}
