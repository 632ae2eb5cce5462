"""What handlers are given: the caller's token and address, the use cases, the current user (or,
for the task routes, the caller as its token says)."""

from typing import Any
from uuid import UUID

from litestar import Request
from litestar.di import NamedDependency, Provide

from application.accounts import AccountService
from application.errors import InvalidToken
from application.ports import Caller
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


def provide_tasks(request: Request[Any, Any, Any], caller: NamedDependency[Caller]) -> TaskService:
    """The task use cases, handed out once the caller's token is verified. (Depending on the
    caller also spares every request a task group: Litestar resolves independent dependencies
    concurrently, in tasks of their own.)"""
    return services_of(request).tasks


async def provide_current_user(request: Request[Any, Any, Any]) -> User:
    accounts = services_of(request).accounts
    user = await accounts.authenticate(bearer_token(request))
    _log_user(request, user.id)
    return user


async def provide_caller(request: Request[Any, Any, Any]) -> Caller:
    """The caller as its token says, with no database read: the task repository admits it (or
    not) in the statement that does the work, one round trip in all."""
    caller = await services_of(request).accounts.caller(bearer_token(request))
    _log_user(request, caller.user_id)
    return caller


def _log_user(request: Request[Any, Any, Any], user_id: UUID) -> None:
    # The scope's state outlives the handler: the request log line names the user.
    request.scope.setdefault("state", {})["user_id"] = str(user_id)


AUTHENTICATED = {"current_user": Provide(provide_current_user)}
TASKS = {
    "caller": Provide(provide_caller),
    "tasks": Provide(provide_tasks, sync_to_thread=False),
}
APP_DEPENDENCIES = {
    "accounts": Provide(provide_accounts, sync_to_thread=False),
}
