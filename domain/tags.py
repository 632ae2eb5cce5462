"""Tags: a user's own words for their tasks, and the rules on their names."""

import unicodedata
from collections.abc import Iterable, Sequence

from domain.errors import FieldError, ValidationFailed

MAX_TAG_LENGTH = 40
MAX_TAGS_PER_TASK = 20


def tag_key(name: str) -> str:
    """A tag's identity: names that differ only in case (Unicode casefold) are one tag."""
    return name.casefold()


def sorted_tags(names: Iterable[str]) -> tuple[str, ...]:
    """Tag names in the order lists show them: case-insensitively, then as spelled."""
    return tuple(sorted(names, key=lambda name: (tag_key(name), name)))


def tag_name_problems(raw: str, field: str) -> tuple[str, list[FieldError]]:
    """The name trimmed of Unicode white space, and what is wrong with it."""
    name = raw.strip()
    if not name:
        return name, [FieldError(field, "Tag must not be blank")]
    if len(name) > MAX_TAG_LENGTH:
        return name, [FieldError(field, f"Tag must be at most {MAX_TAG_LENGTH} characters")]
    if any(unicodedata.category(c) == "Cc" for c in name):
        return name, [FieldError(field, "Tag must not contain control characters")]
    if "/" in name or "," in name:
        return name, [FieldError(field, "Tag must not contain '/' or ','")]
    return name, []


def normalize_tag_name(raw: str, field: str = "name") -> str:
    name, problems = tag_name_problems(raw, field)
    if problems:
        raise ValidationFailed(problems)
    return name


def normalize_tags(raw: Sequence[str], field: str = "tags") -> tuple[str, ...]:
    """A task's tags as written: each name trimmed and checked, duplicates (by tag_key)
    collapsed to their first spelling, at most MAX_TAGS_PER_TASK of them after that."""
    problems: list[FieldError] = []
    kept: dict[str, str] = {}
    for index, raw_name in enumerate(raw):
        name, found = tag_name_problems(raw_name, f"{field}.{index}")
        problems += found
        if not found:
            kept.setdefault(tag_key(name), name)
    if not problems and len(kept) > MAX_TAGS_PER_TASK:
        problems.append(FieldError(field, f"A task has at most {MAX_TAGS_PER_TASK} tags"))
    if problems:
        raise ValidationFailed(problems)
    return tuple(kept.values())
