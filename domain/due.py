"""When a task is due: a day, or a moment of a day in a time zone; and when it is overdue."""

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from importlib import resources
from zoneinfo import ZoneInfo

from domain.errors import FieldError, ValidationFailed

DEFAULT_TIMEZONE = "UTC"
EARLIEST_DUE_DATE = date(1900, 1, 1)
LATEST_DUE_DATE = date(9999, 12, 31)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_TIME = re.compile(r"\d{2}:\d{2}(:\d{2})?", re.ASCII)
# The last moment a datetime can hold: where an all-day due of the last date sorts.
_END_OF_TIME = datetime.max.replace(tzinfo=UTC)


@cache
def timezone_names() -> frozenset[str]:
    """The IANA names (zones and links, spelled with their case) as the tzdata package ships
    them, the same on every machine; not a system's `localtime` or `posixrules` files."""
    listing = resources.files("tzdata").joinpath("zones").read_text(encoding="utf-8")
    return frozenset(listing.split())


def timezone_problems(name: str, field: str) -> list[FieldError]:
    if name not in timezone_names():
        return [FieldError(field, "Must be an IANA time zone name, such as Europe/Lisbon")]
    return []


@cache
def zone(name: str) -> ZoneInfo:
    """The time zone of a valid name (timezone_problems found none)."""
    return ZoneInfo(name)


@dataclass(frozen=True, slots=True)
class Due:
    """Due on `date` (all day) or at `time` of it, in `timezone`. A local time that a change
    of clocks skips or repeats reads as RFC 5545 reads it: a skipped one with the offset from
    before the change, a repeated one as its first occurrence (zoneinfo's fold=0)."""

    date: date
    time: time | None
    timezone: str

    @property
    def at(self) -> datetime | None:
        """The instant of a timed due, in UTC; None all day."""
        if self.time is None:
            return None
        return datetime.combine(self.date, self.time, zone(self.timezone)).astimezone(UTC)

    @property
    def moment(self) -> datetime:
        """Where the due sorts: at its instant, or, all day, at the local midnight that ends
        its date."""
        if self.time is not None:
            return datetime.combine(self.date, self.time, zone(self.timezone)).astimezone(UTC)
        if self.date == LATEST_DUE_DATE:
            return _END_OF_TIME
        midnight = datetime.combine(self.date + timedelta(days=1), time(), zone(self.timezone))
        return min(midnight.astimezone(UTC), _END_OF_TIME)

    def has_passed(self, now: datetime) -> bool:
        """A timed due has passed once its instant is before now; an all-day due once its
        date is before today in its own time zone (that is, from the midnight ending it)."""
        if self.time is None:
            return now >= self.moment
        return self.moment < now


@dataclass(frozen=True, slots=True)
class WrittenDue:
    """A due as a client writes it: `YYYY-MM-DD`, optionally `HH:MM[:SS]`, optionally an IANA
    name (without one, the user's time zone at the time of writing)."""

    date: str
    time: str | None = None
    timezone: str | None = None


def parse_due(written: WrittenDue, *, default_timezone: str) -> Due:
    """The due written; every problem is reported under its dotted field."""
    problems: list[FieldError] = []
    day = _parsed_date(written.date, problems)
    moment = None if written.time is None else _parsed_time(written.time, problems)
    timezone = default_timezone if written.timezone is None else written.timezone
    problems += timezone_problems(timezone, "due.timezone")
    if problems or day is None:
        raise ValidationFailed(problems)
    due = Due(day, moment, timezone)
    try:
        due.moment  # noqa: B018 - computed for its range check
    except OverflowError:
        raise ValidationFailed.single("due", "Falls after the year 9999 in UTC") from None
    return due


def _parsed_date(raw: str, problems: list[FieldError], field: str = "due.date") -> date | None:
    if not _DATE.fullmatch(raw):
        problems.append(FieldError(field, "Must be a date written YYYY-MM-DD"))
        return None
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        problems.append(FieldError(field, "Is not a date of the calendar"))
        return None
    if not EARLIEST_DUE_DATE <= day <= LATEST_DUE_DATE:
        problems.append(FieldError(field, "Must be from 1900-01-01 to 9999-12-31"))
        return None
    return day


def _parsed_time(raw: str, problems: list[FieldError]) -> time | None:
    field = "due.time"
    if not _TIME.fullmatch(raw):
        problems.append(FieldError(field, "Must be a time written HH:MM or HH:MM:SS"))
        return None
    try:
        return time.fromisoformat(raw if len(raw) == 8 else f"{raw}:00")
    except ValueError:
        problems.append(FieldError(field, "Must be from 00:00 to 23:59:59"))
        return None


def parse_day(raw: str, field: str) -> date:
    """A date written YYYY-MM-DD (a filter's bound), or ValidationFailed on `field`."""
    problems: list[FieldError] = []
    day = _parsed_date(raw, problems, field)
    if day is None:
        raise ValidationFailed(problems)
    return day
