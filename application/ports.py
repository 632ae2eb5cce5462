"""The ports: what the use cases need from the outside world, owned by the application core."""

from collections.abc import Awaitable, Callable, Collection, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol, TypeVar
from uuid import UUID

from application.errors import TokenRevoked, UserNotFound
from domain.queries import TaskPosition, TaskQuery, TaskSort, position_of
from domain.tasks import Task
from domain.users import User

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class TaskPage:
    tasks: Sequence[Task]
    total: int
    """How many of the owner's tasks match the filter, on every page."""
    has_more: bool = False
    """Whether more matching tasks follow this page."""

    def next_position(self, sort: TaskSort) -> TaskPosition | None:
        """Where the next page of the list (under this sort) starts, when there is one."""
        return position_of(self.tasks[-1], sort) if self.has_more and self.tasks else None


@dataclass(frozen=True, slots=True)
class TagUsage:
    """One of a user's tags, and how many of their tasks carry it."""

    name: str
    open: int
    total: int


@dataclass(frozen=True, slots=True)
class ExternalIdentity:
    """Who a token of an identity provider (Better Auth) speaks for, in that provider's words."""

    issuer: str
    subject: str
    """The provider's user id: any string, not one of todo-api's UUIDs."""
    email: str
    email_verified: bool


@dataclass(frozen=True, slots=True)
class TokenClaims:
    subject: str
    issued_at: datetime
    expires_at: datetime
    token_id: str | None
    """The `jti` claim; tokens minted elsewhere may not carry one."""
    generation: int | None = None
    """The user's token generation the token was issued in (todo-api's own tokens only)."""
    identity: ExternalIdentity | None = None
    """Set for tokens of an identity provider, whose subject is not a todo-api user id."""


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    expires_in_seconds: int


@dataclass(frozen=True, slots=True)
class Caller:
    """Whom a request speaks for, as its verified token says: known without reading the
    database. Whether the token was logged out or cut off, and whether its user still exists,
    is checked by the task repository in the very statement that does the work."""

    user_id: UUID
    token_key: str | None
    """The token's revocation key; None when the caller holds no token (the command line
    acting for a user it looked up)."""
    issued_at: datetime
    generation: int | None = None
    """The token generation the token was issued in (todo-api's own tokens only)."""


def ensure_admitted(*, revoked: bool, known: bool, current: bool) -> None:
    """The verdict on a token, in the order its checks are reported: logged out (TokenRevoked),
    then no such user (UserNotFound), then cut off by a logout-all or password change
    (TokenRevoked); `current` is the user's User.accepts_token."""
    if revoked:
        raise TokenRevoked()
    if not known:
        raise UserNotFound()
    if not current:
        raise TokenRevoked()


class UserRepository(Protocol):
    async def add(self, user: User) -> User:
        """Stores a new user. Raises EmailAlreadyRegistered when the email is taken, leaving an
        atomic block it is in usable (the block goes on, or ends, as the caller decides)."""
        ...

    async def get(self, user_id: UUID) -> User | None: ...

    async def get_by_email(self, email: str) -> User | None:
        """Looks a user up by the normalised (lowercase) email."""
        ...

    async def change_email(self, user_id: UUID, email: str) -> bool:
        """Stores the account's new (normalised) email; False when another account has it, or
        there is no such account."""
        ...

    async def cut_off_tokens(
        self, user_id: UUID, moment: datetime, *, password_hash: str | None = None
    ) -> User | None:
        """Refuses every token of the user issued so far, in one write: advances the user's
        token_generation by one (concurrent cut-offs each count) and moves tokens_valid_after
        forward to `moment` (never back); with password_hash, stores that password too.
        Returns the stored user, None when there is no such user."""
        ...

    async def change_timezone(self, user_id: UUID, timezone: str) -> User | None:
        """Stores the user's (valid) time zone; returns the stored user, None when there is
        no such user."""
        ...

    async def delete(self, user_id: UUID) -> bool:
        """Deletes the user and, with them, all their tasks. False when there was no such user."""
        ...


class TaskRepository(Protocol):
    def for_caller(self, caller: Caller) -> "CallerTasks":
        """The tasks as the caller may see and change them: every statement is bound to the
        caller's user id and checks the caller."""
        ...


class CallerTasks(Protocol):
    """One caller's tasks. Every statement carries the caller's user id, so that another
    user's task is only ever seen as there and not the caller's (TaskAccessDenied) and never
    changed; and every statement checks the caller in the same round trip as its work, as
    ensure_admitted reports it (TokenRevoked, UserNotFound): a refused caller learns nothing
    of any task and writes nothing, and a logout, cut-off or deletion committed before the
    statement counts."""

    async def admit(self) -> None:
        """Only checks the caller: the first call of an atomic block."""
        ...

    async def timezone(self) -> str:
        """The caller's time zone (an IANA name), in which dues written without one are."""
        ...

    async def add(self, task: Task) -> Task:
        """Stores a new task of the caller's (TaskAccessDenied for anyone else's)."""
        ...

    async def get(self, task_id: UUID, *, for_update: bool = False) -> Task | None:
        """The caller's task, None when no task has the id; TaskAccessDenied when another
        user's has it. for_update, in an atomic block, keeps other writers of the task
        waiting until the block ends (read, then write)."""
        ...

    async def list(self, query: TaskQuery, now: datetime) -> TaskPage:
        """The caller's tasks that match the query (TaskQuery.matches, `now` deciding what is
        overdue), in its sort's order (domain.queries.list_order: ties newest first, so pages
        are stable); those after `query.after` when given (keyset paging, as cheap deep down
        as on top), then `query.offset` skipped. The total counts every task matching the
        filters, whatever the page."""
        ...

    async def update(
        self, task: Task, *, expected_versions: Collection[datetime] | None = None
    ) -> Task | None:
        """Stores the caller's task's title, description and completed flag and moves its
        updated_at strictly forward (domain.tasks.next_version); returns the stored task, or
        None when the caller has no such task or, with expected_versions, when its stored
        updated_at is none of them (checked atomically with the write)."""
        ...

    async def delete(
        self, task_id: UUID, *, expected_versions: Collection[datetime] | None = None
    ) -> bool:
        """False when the caller has no such task or, with expected_versions, when its
        updated_at is none of them."""
        ...

    async def tags(self) -> Sequence[TagUsage]:
        """The caller's vocabulary, sorted as domain.tags.sorted_tags sorts names, each with
        how many of the caller's tasks carry it; a tag no task carries stays, at 0. (The
        vocabulary grows as tasks are given tags: add and update keep the caller's first
        spelling of each tag, by domain.tags.tag_key.)"""
        ...

    async def rename_tag(self, name: str, new_name: str) -> TagUsage:
        """Renames the caller's tag `name` (by tag_key) on every task that carries it, moving
        their updated_at; a change of case only is a rename too. TagNotFound; TagAlreadyExists
        when new_name is another of the caller's tags."""
        ...

    async def delete_tag(self, name: str) -> None:
        """Takes the tag (by tag_key) off every task, moving their updated_at, and out of the
        vocabulary. TagNotFound."""
        ...


@dataclass(frozen=True, slots=True)
class EarlierCreation:
    """What a request with the same Idempotency-Key did before."""

    fingerprint: str
    task: Task | None
    """None while that request has not finished."""


class IdempotencyStore(Protocol):
    async def claim(
        self, owner_id: UUID, key: str, fingerprint: str, now: datetime, ttl: timedelta
    ) -> EarlierCreation | None:
        """Reserves the owner's key for a new creation (None), or returns what an earlier
        request with that key recorded within ttl; a key older than ttl is claimed afresh,
        as if forgotten (purge_expired forgets them in bulk). Made in an
        atomic block, with the creation and its record: a claim in a block that is still
        open makes a concurrent claim of the key wait, and a block that fails frees it."""
        ...

    async def record(self, owner_id: UUID, key: str, task: Task) -> None:
        """Stores the task created under the owner's claimed key."""
        ...

    async def purge_expired(self, claimed_before: datetime) -> int:
        """Forgets every owner's keys claimed before the moment; returns how many (background
        work: a claim never needs it, as it treats an expired key as free)."""
        ...


class PasswordHasher(Protocol):
    """Slow by design; implementations must not block the event loop, and raise ServerBusy
    rather than queue without bound."""

    async def hash(self, password: str) -> str: ...

    async def verify(self, password: str, password_hash: str) -> bool: ...


class TokenService(Protocol):
    def issue(self, user: User, now: datetime) -> IssuedToken:
        """A token for the user, carrying their current token generation."""
        ...

    async def verify(self, token: str) -> TokenClaims:
        """The claims of a genuine, unexpired token. Raises TokenExpired,
        InvalidTokenSignature or InvalidToken; IdentityProviderUnavailable when verifying it
        needs an identity provider that cannot be reached."""
        ...


class RevocationStore(Protocol):
    """Logged-out tokens, shared by every process of the service."""

    async def revoke(self, token_key: str, expires_at: datetime) -> None:
        """Remembers the token until it would expire anyway."""
        ...

    async def purge_expired(self, now: datetime) -> int:
        """Forgets tokens that have expired anyway; returns how many."""
        ...


@dataclass(frozen=True, slots=True)
class TokenSubject:
    """What a token's subject claim leads to."""

    user: User | None
    """None when there is no such user (any more)."""
    token_revoked: bool
    """Whether the token was logged out."""


class TokenSubjects(Protocol):
    async def find(self, user_id: UUID, token_key: str) -> TokenSubject:
        """The user a token names, and whether the token (by its revocation key) was logged
        out: both read at once, since every authenticated request needs both."""
        ...


class LinkedIdentities(Protocol):
    """Accounts linked to identities of an identity provider (Better Auth), by issuer and
    subject; a link goes with its account."""

    async def find(self, issuer: str, subject: str, token_key: str) -> TokenSubject:
        """The account linked to the identity (None when there is none yet) and whether the
        token was logged out, read at once."""
        ...

    async def account_of(self, issuer: str, subject: str) -> UUID | None:
        """The id of the account linked to the identity, if any."""
        ...

    async def link(self, issuer: str, subject: str, user_id: UUID) -> UUID:
        """Links the identity to the account, unless it is linked already; returns the account
        it is linked to (an earlier link wins, also a concurrent one)."""
        ...

    async def is_linked(self, user_id: UUID) -> bool:
        """Whether any identity is linked to the account."""
        ...


class Transactions(Protocol):
    def atomic(self) -> AbstractAsyncContextManager[None]:
        """Every repository and store call made in the block, by the current task, takes
        effect together when the block ends, or not at all when it raises. Outside such a
        block each call takes effect on its own."""
        ...

    async def atomically(self, work: Callable[[], Awaitable[_T]]) -> _T:
        """work() in one atomic block. A block that the database aborts for a conflict with
        a concurrent one (TransactionConflict: a deadlock, a serialization failure) runs once
        more from the start, in a fresh block; a second conflict is raised."""
        ...


class PasswordStrengthMeter(Protocol):
    """Slow for long passwords; implementations must not block the event loop, and raise
    ServerBusy rather than queue without bound."""

    async def weakness(self, password: str, user_inputs: Sequence[str]) -> str | None:
        """None when the password is hard enough to guess; otherwise advice on making it
        stronger. user_inputs (the email, say) count as known to an attacker."""
        ...


@dataclass(frozen=True, slots=True)
class FailedLogins:
    count: int
    window_started_at: datetime


class LoginAttemptStore(Protocol):
    """Counters against brute force, shared by every process of the service."""

    async def record_failed_login(
        self, account_key: str, now: datetime, window: timedelta
    ) -> FailedLogins:
        """Counts one more failure; a failure after the window has passed starts a new one."""
        ...

    async def release_failed_login(self, account_key: str) -> None:
        """Takes back one counted failure (an attempt that reached no verdict)."""
        ...

    async def clear_failed_logins(self, account_key: str) -> None: ...

    async def count_attempt(self, client: str, window_started_at: datetime) -> int:
        """Counts one attempt of the client in the window; returns the window's count so far."""
        ...

    async def purge_expired(
        self, *, failures_started_before: datetime, attempts_started_before: datetime
    ) -> int:
        """Forgets failed-login windows that started before the first moment and attempt
        windows that started before the second; returns how many."""
        ...


class EmailPolicy(Protocol):
    def normalize(self, raw: str) -> str:
        """The canonical (trimmed, lowercase) address, or ValidationFailed on field `email`."""
        ...


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...


class IdGenerator(Protocol):
    def new_id(self) -> UUID: ...


class PeriodicJobs(Protocol):
    """Rounds of the jobs that every process of the service runs in the background, handed
    out so that each round goes to one process only, however many run."""

    async def claim(self, name: str, now: datetime, every: timedelta) -> bool:
        """True when the caller gets the job's round: nobody, in any process, claimed the job
        within `every` before now (or ever). The claim is recorded in the same atomic step,
        so of concurrent callers exactly one gets it, and the job is not due again until
        `every` after now. Never waits for a concurrent claim: it is lost instead. A round
        once claimed is not handed out again, even if its run fails: a job must be fine with
        being skipped for a round, and with running again in the next."""
        ...
