"""The tables printed at the end, the targets of issue 4 with whether each is met, and the raw
numbers as JSON."""

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any

from tests.perf.load import LoadResult
from tests.perf.organised import OrganisedReport
from tests.perf.scale import ScaleReport
from tests.perf.scenarios import (
    SCENARIO_TITLES,
    STORM_LOGIN_CONNECTIONS,
    STORM_TITLE,
    ServerReport,
)

MEBIBYTE = 1024 * 1024
_HEADER = "{:<32}{:>6}     req/s{}    p50 ms    p99 ms  sock err  non-2xx (status:count)"
_SPREAD_WIDTH = 18
FOOTNOTES = """\
req/s counts 2xx answers only; p50/p99 are over every answer; n/a: no answer arrived within the
run. Every row shows the server's round of median req/s (the storm's two rows: the round of
median list req/s), and so do the ratios; rounds min-max: the lowest and highest req/s over the
rounds. Login at full concurrency: a server that bounds its bcrypt queue (todo-api) answers 503
beyond it, so non-2xx is expected there; one that hashes every login at once in a thread pool
(the baseline) makes each take about as long as all of them. The baseline's /health does not
touch the database."""


@dataclass(frozen=True, slots=True)
class Target:
    description: str
    measured: float | None
    goal: str
    met: bool | None
    unit: str

    def shown(self) -> str:
        if self.measured is None:
            return "n/a"
        if self.unit == "ms":
            return f"{self.measured:.1f} ms"
        if self.unit == "%":
            return f"{self.measured:+.1f}%"
        return f"{self.measured:.2f}{self.unit}"


def target(
    description: str,
    measured: float | None,
    goal: str,
    passes: Callable[[float], bool],
    unit: str = "x",
) -> Target:
    met = None if measured is None else passes(measured)
    return Target(description, measured, goal, met, unit)


def server_table(report: ServerReport, connections: int) -> str:
    rows = [
        (title, connections, report.scenarios[key], key) for key, title in SCENARIO_TITLES.items()
    ]
    rows += [
        (STORM_TITLE, connections, report.storm_list, "storm_list"),
        ("  logins during the storm", STORM_LOGIN_CONNECTIONS, report.storm_login, "storm_login"),
    ]
    spread_header = f"{'rounds min-max':>{_SPREAD_WIDTH}}"
    lines = [f"== {report.name}  {report.url}", _HEADER.format("scenario", "conns", spread_header)]
    lines += [
        _row(title, result, conns, _spread(report.requests_per_second_by_round[key]))
        for title, conns, result, key in rows
    ]
    if report.memory:
        readings = ", ".join(
            f"{m.rss_bytes / MEBIBYTE:.1f} MiB after {m.after_requests} requests"
            for m in report.memory
        )
        lines.append(f"resident memory: {readings} ({_growth(report):+.1f}%)")
    return "\n".join(lines)


def ratio_table(todo: ServerReport, baseline: ServerReport) -> str:
    pairs = [
        (title, todo.scenarios[key], baseline.scenarios[key])
        for key, title in SCENARIO_TITLES.items()
    ]
    pairs.append((STORM_TITLE, todo.storm_list, baseline.storm_list))
    lines = [
        "== todo-api vs baseline (req/s: todo-api / baseline; p99: baseline / todo-api)",
        f"{'scenario':<32}{'req/s ratio':>12}{'p99 ratio':>12}",
    ]
    lines += [
        f"{title:<32}"
        f"{_times(_ratio(ours.requests_per_second, theirs.requests_per_second)):>12}"
        f"{_times(_ratio(theirs.p99_ms, ours.p99_ms)):>12}"
        for title, ours, theirs in pairs
    ]
    return "\n".join(lines)


def scale_table(scale: ScaleReport) -> str:
    rows = [
        ("first page, user with 100 tasks", scale.first_page_100),
        ("first page, user with 100 000", scale.first_page_100k),
        ("offset=50000 page, same user", scale.offset_page_100k),
        ("cursor page from the middle", scale.cursor_page_100k),
        ("user with 10 tasks, alone", scale.tiny_user_alone),
        ("same, among 10 x 100 000 others", scale.tiny_user_among_others),
    ]
    lines = ["== todo-api: GET /api/tasks?limit=20 as data grows", _HEADER.format("page", "", "")]
    for title, result in rows:
        if result is None:
            lines.append(f"{title:<32}n/a: no `cursor` parameter in the OpenAPI document")
        else:
            lines.append(_row(title, result))
    return "\n".join(lines)


def organised_table(organised: OrganisedReport) -> str:
    lines = [
        "== todo-api: first page (with its total) of each list, 100 and 100 000 tasks",
        _HEADER.format("list", "", ""),
    ]
    for title in organised.small:
        lines.append(_row(f"{title}, 100", organised.small[title]))
        lines.append(_row(f"{title}, 100 000", organised.large[title]))
    lines.append(_row("sort=due, cursor page (middle)", organised.cursor_under_due))
    return "\n".join(lines)


def organised_targets(organised: OrganisedReport) -> list[Target]:
    found = [
        target(
            f"organised: {title}: req/s, 100 tasks / 100k",
            _ratio(small.requests_per_second, organised.large[title].requests_per_second),
            "<= 2x",
            _at_most(2),
        )
        for title, small in organised.small.items()
    ]
    found.append(
        target(
            "organised: sort=due cursor page (middle of 100k): req/s, first page at 100 / it",
            _ratio(
                organised.small["sort=due"].requests_per_second,
                organised.cursor_under_due.requests_per_second,
            ),
            "<= 2x",
            _at_most(2),
        )
    )
    return found


def targets(
    todo: ServerReport, baseline: ServerReport | None, scale: ScaleReport | None
) -> list[Target]:
    def versus_baseline(key: str) -> float | None:
        if baseline is None:
            return None
        ours, theirs = todo.scenarios[key], baseline.scenarios[key]
        return _ratio(ours.requests_per_second, theirs.requests_per_second)

    idle_list = todo.scenarios["list"]
    list_p99 = (
        None if baseline is None else _ratio(baseline.scenarios["list"].p99_ms, idle_list.p99_ms)
    )
    found = [
        target("list 20 tasks: req/s vs baseline", versus_baseline("list"), ">= 6x", _at_least(6)),
        target("list 20 tasks: p99, baseline / todo-api", list_p99, ">= 5x", _at_least(5)),
        target("get one task: req/s vs baseline", versus_baseline("get"), ">= 5x", _at_least(5)),
        target(
            "create a task: req/s vs baseline", versus_baseline("create"), ">= 5x", _at_least(5)
        ),
        target(
            "update a task: req/s vs baseline", versus_baseline("update"), ">= 5x", _at_least(5)
        ),
        target(
            "login storm: list req/s / idle list req/s",
            _ratio(todo.storm_list.requests_per_second, idle_list.requests_per_second),
            ">= 0.5",
            _at_least(0.5),
            unit="",
        ),
        target(
            "login storm: list p99",
            todo.storm_list.p99_ms,
            "< 100 ms",
            lambda value: value < 100,
            unit="ms",
        ),
    ]
    if scale is not None:
        found += _scale_targets(scale)
    if todo.memory:
        found.append(
            target(
                "memory: RSS growth 20k -> 200k requests",
                _growth(todo),
                "<= +10%",
                lambda value: value <= 10,
                unit="%",
            )
        )
        if baseline is not None and baseline.memory:
            found.append(
                target(
                    "memory: todo-api RSS / baseline RSS at 200k",
                    _ratio(todo.memory[-1].rss_bytes, baseline.memory[-1].rss_bytes),
                    "< 1",
                    lambda value: value < 1,
                    unit="",
                )
            )
    return found


def _scale_targets(scale: ScaleReport) -> list[Target]:
    def cost(expensive: LoadResult | None, cheap: LoadResult) -> float | None:
        return None if expensive is None else _ratio(expensive.p50_ms, cheap.p50_ms)

    first, large = scale.first_page_100, scale.first_page_100k
    return [
        target(
            "flat cost: first page p50, 100k tasks / 100",
            cost(large, first),
            "<= 2x",
            _at_most(2),
        ),
        target(
            "flat cost: first page req/s, 100 tasks / 100k",
            _ratio(first.requests_per_second, large.requests_per_second),
            "<= 2x",
            _at_most(2),
        ),
        target(
            "others' data: 10-task user p50, with / without",
            cost(scale.tiny_user_among_others, scale.tiny_user_alone),
            "<= 1.5x (noise)",
            _at_most(1.5),
        ),
        target(
            "deep page: cursor page p50 / first page",
            cost(scale.cursor_page_100k, large),
            "<= 1.5x (noise)",
            _at_most(1.5),
        ),
    ]


def targets_table(found: list[Target]) -> str:
    lines = ["== targets of issue 4", f"{'target':<50}{'measured':>11}  {'goal':<17}met"]
    for each in found:
        met = {True: "yes", False: "NO", None: "-"}[each.met]
        lines.append(f"{each.description:<50}{each.shown():>11}  {each.goal:<17}{met}")
    return "\n".join(lines)


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.write_text(json.dumps(document, indent=2, default=_plain) + "\n")


def _plain(value: object) -> object:
    if not is_dataclass(value) or isinstance(value, type):
        raise TypeError(f"not serialisable: {value!r}")
    plain = {field.name: getattr(value, field.name) for field in fields(value)}
    if isinstance(value, LoadResult):
        plain["requests_per_second"] = value.requests_per_second
    return plain


def _row(title: str, result: LoadResult, connections: int | None = None, spread: str = "") -> str:
    others = " ".join(
        f"{status}:{count}"
        for status, count in sorted(result.statuses.items())
        if not 200 <= status < 300
    )
    return (
        f"{title:<32}{connections or '':>6}{result.requests_per_second:>10.1f}{spread}"
        f"{_milliseconds(result.p50_ms):>10}{_milliseconds(result.p99_ms):>10}"
        f"{result.socket_errors:>10}  {others or '0'}"
    )


def _spread(rates: Sequence[float]) -> str:
    shown = f"{min(rates):.1f}-{max(rates):.1f}"
    return f"{shown:>{_SPREAD_WIDTH}}"


def _milliseconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def _times(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def _at_least(bound: float) -> Callable[[float], bool]:
    return lambda value: value >= bound


def _at_most(bound: float) -> Callable[[float], bool]:
    return lambda value: value <= bound


def _growth(report: ServerReport) -> float:
    first, last = report.memory[0].rss_bytes, report.memory[-1].rss_bytes
    return (last - first) / first * 100


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    """None when either side is unknown or the denominator is 0."""
    if numerator is None or not denominator:
        return None
    return numerator / denominator
