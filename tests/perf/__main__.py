"""Benchmark todo-api side by side with the FastAPI + SQLModel baseline (issue 4).

Starts todo-api (`todo-api serve`, bcrypt cost 12, login throttling off) on a fresh database,
seeds it through the HTTP API, and measures requests/s and p50/p99 latency of: list 20 tasks,
get one task, create a task, update a task, login, health, and the list while 8 connections log
in continuously. With --baseline URL or --start-baseline the same scenarios run against the
baseline, and the ratios are compared with the targets of issue 4. Both servers are seeded
first; then, in each of --rounds rounds, every scenario is measured on todo-api and on the
baseline back to back (todo-api first in odd rounds, the baseline first in even ones), so that
a machine whose speed drifts weighs on both alike. Each server reports, per scenario, its round
of median req/s, and the spread over the rounds. Load comes from wrk when it is on PATH, else
from a Python asyncio load generator. todo-api's other settings
(DATABASE_PREPARE_THRESHOLD, DATABASE_POOL_MAX, LOG_LEVEL...) pass through from the environment.

examples:
  uv run python -m tests.perf --start-baseline
  uv run python -m tests.perf --duration 5 --start-baseline --scale --memory --json perf.json
  uv run python -m tests.perf --baseline http://127.0.0.1:8801
  uv run python -m tests.perf --duration 5 --rounds 1 --organised
"""

import argparse
import os
import signal
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import NoReturn

from tests.perf import report
from tests.perf.load import LoadGenerator
from tests.perf.organised import OrganisedReport, measure_organised
from tests.perf.scale import ScaleReport, measure_scale
from tests.perf.scenarios import Options, ServerReport, benchmark_servers, progress
from tests.perf.servers import (
    RunningServer,
    baseline_server,
    fresh_database,
    local_server,
    postgres_server,
    todo_api_server,
)

REPOSITORY = Path(__file__).resolve().parents[2]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tests.perf",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL"),
        help="a PostgreSQL server on which fresh databases may be created "
        "(default: $DATABASE_URL, else an embedded server started for the run)",
    )
    parser.add_argument(
        "--duration", type=float, default=10, help="seconds per scenario (default: %(default)s)"
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=2,
        help="seconds of warm-up per scenario (default: %(default)s)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="measurements of each scenario on each server, of which the round of median "
        "req/s is reported (default: %(default)s)",
    )
    parser.add_argument(
        "--connections", type=int, default=32, help="concurrent connections (default: %(default)s)"
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="todo-api server processes (default: %(default)s)"
    )
    baseline = parser.add_mutually_exclusive_group()
    baseline.add_argument("--baseline", metavar="URL", help="a running baseline to compare with")
    baseline.add_argument(
        "--start-baseline",
        action="store_true",
        help="start the baseline from SHARED_DIR/baseline as its README says",
    )
    parser.add_argument(
        "--shared-dir",
        type=Path,
        default=REPOSITORY.parent / "shared",
        help="where the baseline lives (default: ../shared next to the repository)",
    )
    parser.add_argument(
        "--scale",
        action="store_true",
        help="also measure listing at 100 and 100 000 tasks per user, among 10 x 100 000 "
        "other tasks, and deep pages (slower)",
    )
    parser.add_argument(
        "--organised",
        action="store_true",
        help="also measure the first page of each sort and filter most lists are read by, "
        "at 100 and 100 000 tasks of a realistic mix (slower)",
    )
    parser.add_argument(
        "--memory",
        action="store_true",
        help="also read resident memory after 20 000 and 200 000 list/get requests (slow)",
    )
    parser.add_argument(
        "--python-load",
        action="store_true",
        help="use the Python load generator even when wrk is installed",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the raw numbers here")
    return parser


def main() -> None:
    parser = _parser()
    arguments = parser.parse_args()
    if (
        arguments.duration <= 0
        or arguments.warmup < 0
        or min(arguments.rounds, arguments.connections, arguments.workers) < 1
    ):
        parser.error(
            "--duration, --rounds, --connections and --workers must be positive, "
            "--warmup not negative"
        )
    # SIGTERM unwinds like Ctrl-C, so that the servers and the database are stopped.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    options = Options(
        duration=arguments.duration,
        warmup=arguments.warmup,
        connections=arguments.connections,
        memory=arguments.memory,
        rounds=arguments.rounds,
    )
    generator = LoadGenerator(python_only=arguments.python_load)
    progress(f"load generator: {generator.name}")
    with ExitStack() as stack:
        work_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="todo-perf-")))
        server_url = stack.enter_context(postgres_server(arguments.database_url, work_dir))
        todo_database = stack.enter_context(fresh_database(server_url, "todo_api"))
        todo = stack.enter_context(
            todo_api_server(todo_database, workers=arguments.workers, work_dir=work_dir)
        )
        baseline: RunningServer | None = None
        if arguments.start_baseline:
            baseline_database = stack.enter_context(fresh_database(server_url, "baseline"))
            baseline = stack.enter_context(
                baseline_server(arguments.shared_dir, baseline_database, work_dir)
            )
        elif arguments.baseline:
            baseline = local_server("baseline", arguments.baseline)

        servers = [todo] if baseline is None else [todo, baseline]
        todo_report, *baseline_reports = benchmark_servers(servers, generator, options)
        baseline_report = baseline_reports[0] if baseline_reports else None
        scale = measure_scale(generator, todo, todo_database, options) if arguments.scale else None
        organised = (
            measure_organised(generator, todo, todo_database, options)
            if arguments.organised
            else None
        )
    _print_and_save(arguments, generator, todo_report, baseline_report, scale, organised)


def _print_and_save(
    arguments: argparse.Namespace,
    generator: LoadGenerator,
    todo: ServerReport,
    baseline: ServerReport | None,
    scale: ScaleReport | None,
    organised: OrganisedReport | None = None,
) -> None:
    print(
        f"\nload: {generator.name}; {arguments.connections} connections, "
        f"{arguments.duration:g} s per scenario after {arguments.warmup:g} s of warm-up; "
        f"{arguments.rounds} round{'s' if arguments.rounds != 1 else ''}, medians; "
        f"todo-api workers: {arguments.workers}\n"
    )
    sections = [report.server_table(todo, arguments.connections)]
    if baseline is not None:
        sections.append(report.server_table(baseline, arguments.connections))
        sections.append(report.ratio_table(todo, baseline))
    if scale is not None:
        sections.append(report.scale_table(scale))
    found = report.targets(todo, baseline, scale)
    if organised is not None:
        sections.append(report.organised_table(organised))
        found += report.organised_targets(organised)
    sections += [report.targets_table(found), report.FOOTNOTES]
    print("\n\n".join(sections))
    if arguments.json:
        report.write_json(
            arguments.json,
            {
                "load_generator": generator.name,
                "options": {
                    "duration": arguments.duration,
                    "warmup": arguments.warmup,
                    "rounds": arguments.rounds,
                    "connections": arguments.connections,
                    "workers": arguments.workers,
                },
                "servers": [server for server in (todo, baseline) if server is not None],
                "scale": scale,
                "organised": organised,
                "targets": found,
            },
        )


def _exit_on_signal(signum: int, _frame: object) -> NoReturn:
    sys.exit(128 + signum)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
    except RuntimeError as error:  # a server that would not start, an unexpected answer
        sys.exit(f"python -m tests.perf: error: {error}")
