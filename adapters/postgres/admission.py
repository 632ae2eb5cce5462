"""The caller's admission, read in the statement that does the work: whether the token was
logged out, whether its user exists, and User.accepts_token spelled in SQL (a token carrying
its generation must be of the user's current one; one without must be issued strictly after
the last cut-off). The contract suite holds it to the same answers as the in-memory fake."""

from collections.abc import Sequence
from typing import Any

from psycopg import sql

from application.ports import Caller, ensure_admitted

VERDICT = ("revoked", "known", "current")

_CALLER = sql.SQL("""caller AS (
    SELECT EXISTS (SELECT FROM revoked_tokens WHERE token_key = %(caller_token)s) AS revoked,
           users.id IS NOT NULL AS known,
           coalesce(
               CASE WHEN %(caller_generation)s::integer IS NULL
                    THEN users.tokens_valid_after IS NULL
                         OR %(caller_issued_at)s::timestamptz > users.tokens_valid_after
                    ELSE users.token_generation = %(caller_generation)s::integer
               END,
               false
           ) AS current
    FROM (SELECT) AS one
    LEFT JOIN users ON users.id = %(caller_id)s
)""")

ADMITTED = sql.SQL("(SELECT NOT revoked AND known AND current FROM caller)")
"""The work's own condition: for a refused caller it reads no task and writes nothing."""

ADMISSION = (
    sql.SQL("WITH {} SELECT revoked, known, current FROM caller").format(_CALLER).as_bytes(None)
)


def behind_the_caller(
    work: sql.Composable,
    *,
    beside: sql.Composable | None = None,
    writes: sql.Composable | None = None,
) -> bytes:
    """The statement `work` (gated by ADMITTED) with the caller's verdict in front of each of
    its rows, and one row of verdict alone when the work has none; `beside`, more columns
    computed once; `writes`, data-modifying CTEs (also gated) that `work` reads from, which
    PostgreSQL allows only at the top level. Rendered once (to the bytes psycopg sends), not
    on every execution."""
    extra = sql.SQL("") if beside is None else sql.SQL(", {}").format(beside)
    before = sql.SQL("") if writes is None else sql.SQL("{}, ").format(writes)
    return (
        sql.SQL(
            """WITH {caller}, {before}work AS ({work})
               SELECT caller.revoked, caller.known, caller.current{extra}, work.*
               FROM caller LEFT JOIN work ON true"""
        )
        .format(caller=_CALLER, before=before, work=work, extra=extra)
        .as_bytes(None)
    )


def with_caller(caller: Caller) -> dict[str, Any]:
    """The statement parameters the caller CTE reads."""
    return {
        "caller_id": caller.user_id,
        "caller_token": caller.token_key,
        "caller_issued_at": caller.issued_at,
        "caller_generation": caller.generation,
    }


def ensure_verdict_admits(verdict: Sequence[Any]) -> None:
    """Raises as ensure_admitted does unless the row's (revoked, known, current) admit."""
    revoked, known, current = verdict[:3]
    ensure_admitted(revoked=revoked, known=known, current=current)
