"""The auth routes: accounts, sessions and passwords."""

from typing import Any

from litestar import Controller, Request, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK

from application.accounts import AccountService
from domain.users import User
from entrypoints.http.dependencies import AUTHENTICATED, bearer_token, client_address
from entrypoints.http.errors import MalformedJson, StrictJsonDTO, responses
from entrypoints.http.schemas import (
    AccountResponse,
    AuthResponse,
    Credentials,
    MessageResponse,
    NewAccount,
    PasswordChange,
    PasswordConfirmation,
    TimezoneChange,
    UserResponse,
)


class AuthController(Controller):
    path = "/api/auth"
    tags = ["auth"]

    @post(
        "/register",
        dto=StrictJsonDTO[NewAccount],
        return_dto=None,
        responses=responses(400, 409, 413, 422, 429, 503),
    )
    async def register(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[NewAccount],
        accounts: NamedDependency[AccountService],
    ) -> UserResponse:
        user = await accounts.register(data.email, data.password, client_address(request))
        return UserResponse.of(user)

    @post(
        "/login",
        status_code=HTTP_200_OK,
        dto=StrictJsonDTO[Credentials],
        return_dto=None,
        responses=responses(400, 401, 413, 422, 429, 503),
    )
    async def login(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[Credentials],
        accounts: NamedDependency[AccountService],
    ) -> AuthResponse:
        session = await accounts.log_in(data.email, data.password, client_address(request))
        return AuthResponse.of(session)

    @post(
        "/logout",
        status_code=HTTP_200_OK,
        responses=responses(401, 409, 503),
        security=[{"bearer": []}],
    )
    async def logout(
        self, request: Request[Any, Any, Any], accounts: NamedDependency[AccountService]
    ) -> MessageResponse:
        await accounts.log_out(bearer_token(request))
        return MessageResponse(message="Logged out successfully")

    @get(
        "/me",
        dependencies=AUTHENTICATED,
        responses=responses(401, 409, 503),
        security=[{"bearer": []}],
    )
    async def me(
        self, current_user: NamedDependency[User], accounts: NamedDependency[AccountService]
    ) -> AccountResponse:
        return AccountResponse(
            id=current_user.id,
            email=current_user.email,
            created_at=current_user.created_at,
            timezone=current_user.timezone,
            sign_in=await accounts.sign_in_method(current_user),
        )

    @patch(
        "/me",
        dependencies=AUTHENTICATED,
        dto=StrictJsonDTO[TimezoneChange],
        return_dto=None,
        responses=responses(400, 401, 409, 413, 422, 503),
        security=[{"bearer": []}],
    )
    async def change_settings(
        self,
        data: JSONBody[TimezoneChange],
        current_user: NamedDependency[User],
        accounts: NamedDependency[AccountService],
    ) -> UserResponse:
        """The user's settings: their time zone (an IANA name), in which dues written without
        one are."""
        return UserResponse.of(await accounts.change_timezone(current_user, data.timezone))

    @post(
        "/logout-all",
        status_code=HTTP_200_OK,
        dependencies=AUTHENTICATED,
        responses=responses(401, 409, 503),
        security=[{"bearer": []}],
    )
    async def logout_everywhere(
        self, current_user: NamedDependency[User], accounts: NamedDependency[AccountService]
    ) -> MessageResponse:
        """Revokes every token of the caller issued up to now, on every device."""
        await accounts.log_out_everywhere(current_user)
        return MessageResponse(message="Logged out everywhere")

    @post(
        "/password",
        status_code=HTTP_200_OK,
        dependencies=AUTHENTICATED,
        dto=StrictJsonDTO[PasswordChange],
        return_dto=None,
        responses=responses(400, 401, 409, 413, 422, 429, 503),
        security=[{"bearer": []}],
    )
    async def change_password(
        self,
        data: JSONBody[PasswordChange],
        current_user: NamedDependency[User],
        accounts: NamedDependency[AccountService],
    ) -> AuthResponse:
        """Changes the password and revokes every older token, this one included; the answer
        carries a fresh token. An account that signs in through Better Auth has no password
        here: 409."""
        session = await accounts.change_password(
            current_user, data.current_password, data.new_password
        )
        return AuthResponse.of(session)

    @delete(
        "/me",
        dependencies=AUTHENTICATED,
        dto=StrictJsonDTO[PasswordConfirmation],
        return_dto=None,
        responses=responses(400, 401, 409, 413, 422, 429, 503),
        security=[{"bearer": []}],
    )
    async def delete_account(
        self,
        current_user: NamedDependency[User],
        accounts: NamedDependency[AccountService],
        data: JSONBody[PasswordConfirmation | None] = None,
    ) -> None:
        """Deletes the account and all its tasks, once the password confirms it. An account
        that signs in through Better Auth without a password needs no body."""
        if data is None and current_user.password_hash is not None:
            raise MalformedJson("the body is empty")
        await accounts.delete_account(current_user, None if data is None else data.password)
