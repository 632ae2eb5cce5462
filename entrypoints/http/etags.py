"""Entity tags of tasks: the task's updated_at, which moves forward on every change."""

from datetime import UTC, datetime, timedelta

from domain.tasks import Task

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def etag_of(task: Task) -> str:
    return f'"{(task.updated_at - _EPOCH) // _MICROSECOND}"'


def versions_in(if_match: str) -> list[datetime] | None:
    """The versions an If-Match header accepts; None for `*` (any). Weak tags never match a
    strong comparison, and tags this API did not give out match nothing."""
    if if_match.strip() == "*":
        return None
    versions = []
    for tag in if_match.split(","):
        tag = tag.strip()
        if len(tag) < 3 or not (tag.startswith('"') and tag.endswith('"')):
            continue
        digits = tag[1:-1]
        # Strong comparison is character by character: "007" is not the tag "7".
        canonical = digits == "0" or not digits.startswith("0")
        if digits.isascii() and digits.isdigit() and canonical and len(digits) <= 18:
            try:
                versions.append(_EPOCH + int(digits) * _MICROSECOND)
            except OverflowError:
                continue
    return versions


def matches_none(if_none_match: str, task: Task) -> bool:
    """Whether a GET's If-None-Match names the task's current version (weak comparison)."""
    current = etag_of(task)
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in tags or current in tags
