"""What is measured on each server: seeding through its HTTP API, the six scenarios of issue 4,
the list under a login storm, and resident memory over many requests. The scenarios run in
rounds, every server measured back to back within each, and each server reports its median
round, so that the drift of a shared machine weighs on all servers alike."""

import json
import secrets
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx

from tests.perf.load import HttpRequest, Load, LoadGenerator, LoadResult
from tests.perf.servers import RunningServer, cpu_seconds, resident_memory_bytes

PASSWORD = "plum-orbit-cascade-47"
RUN_TAG = secrets.token_hex(4)
"""In every email: a server given with --baseline keeps the accounts of earlier runs."""
SEEDED_TASKS = 200
STORM_LOGIN_CONNECTIONS = 8
MEMORY_CHECKPOINTS = (20_000, 200_000)
MEMORY_ROUND_SECONDS = 60.0
SETTLE_SECONDS = 120
IDLE_SAMPLE_SECONDS = 0.5
IDLE_CPU_SHARE = 0.1
"""Idle: the server used less than this share of one core over a sample."""
SCENARIO_TITLES = {
    "list": "list 20 tasks",
    "get": "get one task",
    "create": "create a task",
    "update": "update a task",
    "health": "health",
    "login": "login (bcrypt cost 12)",
}
STORM = "storm"
"""The list under a login storm: two loads at once, the list first."""
STORM_TITLE = "list under login storm"


@dataclass(frozen=True, slots=True)
class Options:
    duration: float
    warmup: float
    connections: int
    memory: bool
    rounds: int


@dataclass(frozen=True, slots=True)
class Account:
    email: str
    user_id: str
    token: str

    def headers(self, *, json_body: bool = False) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token}"}
        return headers | {"Content-Type": "application/json"} if json_body else headers


@dataclass(frozen=True, slots=True)
class Seed:
    reader: Account
    """Owns the seeded tasks: listed, read, updated, and logs in."""
    writer: Account
    """Receives the tasks created under load, so that the reader's list stays the same size."""
    task_ids: list[str]


@dataclass(frozen=True, slots=True)
class MemoryReading:
    after_requests: int
    rss_bytes: int


@dataclass(frozen=True, slots=True)
class ServerReport:
    name: str
    url: str
    scenarios: dict[str, LoadResult]
    storm_list: LoadResult
    storm_login: LoadResult
    memory: list[MemoryReading]
    requests_per_second_by_round: dict[str, list[float]]
    """The req/s of every round, by key of SCENARIO_TITLES and "storm_list", "storm_login". The
    results above are those of the median round (the storm's by the list's req/s)."""


def expect(response: httpx.Response, status: int) -> httpx.Response:
    if response.status_code != status:
        raise RuntimeError(
            f"{response.request.method} {response.request.url} answered "
            f"{response.status_code} (expected {status}): {response.text[:300]}"
        )
    return response


def register(client: httpx.Client, email: str) -> str:
    """A new account; returns its id."""
    answer = expect(
        client.post("/api/auth/register", json={"email": email, "password": PASSWORD}), 201
    )
    user_id: str = answer.json()["id"]
    return user_id


def email_of(name: str) -> str:
    return f"{name}-{RUN_TAG}@example.com"


def log_in(client: httpx.Client, email: str) -> Account:
    answer = expect(
        client.post("/api/auth/login", json={"email": email, "password": PASSWORD}), 200
    ).json()
    return Account(email=email, user_id=answer["user"]["id"], token=answer["access_token"])


def seed(base_url: str) -> Seed:
    with httpx.Client(base_url=base_url, timeout=60) as client:
        reader_email, writer_email = email_of("reader"), email_of("writer")
        for email in (reader_email, writer_email):
            register(client, email)
        reader = log_in(client, reader_email)
        writer = log_in(client, writer_email)
        task_ids = [
            expect(
                client.post(
                    "/api/tasks",
                    headers=reader.headers(),
                    json={"title": f"Seeded task {n}", "description": "for the benchmark"},
                ),
                201,
            ).json()["id"]
            for n in range(SEEDED_TASKS)
        ]
    return Seed(reader=reader, writer=writer, task_ids=task_ids)


def list_request(account: Account, query: str = "limit=20") -> HttpRequest:
    return HttpRequest("GET", f"/api/tasks?{query}", account.headers())


def login_request(email: str) -> HttpRequest:
    body = json.dumps({"email": email, "password": PASSWORD})
    return HttpRequest("POST", "/api/auth/login", {"Content-Type": "application/json"}, body)


def scenarios(seed: Seed) -> dict[str, Sequence[HttpRequest]]:
    """The requests each scenario cycles through, by key of SCENARIO_TITLES."""
    reader, writer = seed.reader, seed.writer
    return {
        "list": [list_request(reader)],
        "get": [
            HttpRequest("GET", f"/api/tasks/{task_id}", reader.headers())
            for task_id in seed.task_ids
        ],
        "create": [
            HttpRequest(
                "POST",
                "/api/tasks",
                writer.headers(json_body=True),
                '{"title": "Created under load", "description": "benchmark"}',
            )
        ],
        "update": [
            HttpRequest(
                "PUT",
                f"/api/tasks/{task_id}",
                reader.headers(json_body=True),
                '{"completed": true}',
            )
            for task_id in seed.task_ids
        ],
        "health": [HttpRequest("GET", "/health")],
        "login": [login_request(reader.email)],
    }


def measure(
    generator: LoadGenerator, server: RunningServer, loads: Sequence[Load], options: Options
) -> list[LoadResult]:
    """The loads run together for the duration, after a warm-up whose numbers are dropped."""
    if options.warmup > 0:
        settle(server)
        generator.run(server.url, loads, seconds=options.warmup)
    settle(server)
    return generator.run(server.url, loads, seconds=options.duration)


def settle(server: RunningServer) -> None:
    """Waits until the server answers and, when it runs here, until it is idle. A load generator
    that stops closes its connections, but the server goes on hashing the passwords it was
    given (in a thread pool, or in a bounded queue whose slots stay taken until the hash is
    done), and that work must not count against the next run."""
    expect(httpx.get(f"{server.url}/health", timeout=SETTLE_SECONDS), 200)
    if server.pid is None:
        return
    deadline = time.monotonic() + SETTLE_SECONDS
    used = cpu_seconds(server.pid)
    while time.monotonic() < deadline:
        time.sleep(IDLE_SAMPLE_SECONDS)
        previously, used = used, cpu_seconds(server.pid)
        if used - previously < IDLE_SAMPLE_SECONDS * IDLE_CPU_SHARE:
            return
    progress(f"{server.name}: still busy after {SETTLE_SECONDS} s; going on")


@dataclass(slots=True)
class _Rounds:
    """One server, seeded, and the results of each of its measurements so far."""

    server: RunningServer
    loads: dict[str, list[Load]]
    memory: list[MemoryReading]
    results: dict[str, list[list[LoadResult]]] = field(default_factory=dict)
    """By key of `loads`, one list per round: the results of its loads, in their order."""


def benchmark_servers(
    servers: Sequence[RunningServer], generator: LoadGenerator, options: Options
) -> list[ServerReport]:
    """Seeds every server (and reads its memory with --memory), then runs `options.rounds`
    rounds: in each, every scenario is measured on all the servers back to back, in their order
    in odd rounds and in reverse order in even ones. Each server reports, for each scenario,
    its round of median req/s (the lower middle for an even number of rounds)."""
    prepared = [_prepare(server, generator, options) for server in servers]
    for number in range(1, options.rounds + 1):
        order = prepared if number % 2 else prepared[::-1]
        for key in [*SCENARIO_TITLES, STORM]:
            for each in order:
                # The others must be idle too: one may still be hashing its last logins.
                for other in servers:
                    if other is not each.server:
                        settle(other)
                results = measure(generator, each.server, each.loads[key], options)
                each.results.setdefault(key, []).append(results)
                title = SCENARIO_TITLES.get(key, STORM_TITLE)
                progress(
                    f"round {number}/{options.rounds}: {each.server.name}: {title}: "
                    f"{results[0].requests_per_second:.0f} req/s"
                )
    return [_median_report(each) for each in prepared]


def _prepare(server: RunningServer, generator: LoadGenerator, options: Options) -> _Rounds:
    progress(f"{server.name}: seeding {SEEDED_TASKS} tasks through the API")
    seeded = seed(server.url)
    memory = measure_memory(server, generator, seeded, options) if options.memory else []
    loads = {
        key: [Load(requests, options.connections)] for key, requests in scenarios(seeded).items()
    }
    loads[STORM] = [
        Load([list_request(seeded.reader)], options.connections),
        Load([login_request(seeded.reader.email)], STORM_LOGIN_CONNECTIONS),
    ]
    return _Rounds(server, loads, memory)


def _median_report(rounds: _Rounds) -> ServerReport:
    def rates(key: str, load: int = 0) -> list[float]:
        return [results[load].requests_per_second for results in rounds.results[key]]

    storm_list, storm_login = _median_round(rounds.results[STORM])
    return ServerReport(
        name=rounds.server.name,
        url=rounds.server.url,
        scenarios={key: _median_round(rounds.results[key])[0] for key in SCENARIO_TITLES},
        storm_list=storm_list,
        storm_login=storm_login,
        memory=rounds.memory,
        requests_per_second_by_round={key: rates(key) for key in SCENARIO_TITLES}
        | {"storm_list": rates(STORM), "storm_login": rates(STORM, load=1)},
    )


def _median_round(rounds: Sequence[Sequence[LoadResult]]) -> Sequence[LoadResult]:
    """The results of the round whose first load had the median req/s (the lower middle of an
    even number of rounds)."""
    ranked = sorted(rounds, key=lambda results: results[0].requests_per_second)
    return ranked[(len(ranked) - 1) // 2]


def measure_memory(
    server: RunningServer, generator: LoadGenerator, seeded: Seed, options: Options
) -> list[MemoryReading]:
    """RSS after each checkpoint of a list/get mix; nothing when the process is not local."""
    if server.pid is None:
        progress(f"{server.name}: not a local process, memory is not measured")
        return []
    mix = Load(
        [
            request
            for task_id in seeded.task_ids
            for request in (
                list_request(seeded.reader),
                HttpRequest("GET", f"/api/tasks/{task_id}", seeded.reader.headers()),
            )
        ],
        options.connections,
    )
    readings: list[MemoryReading] = []
    answered = 0
    for checkpoint in MEMORY_CHECKPOINTS:
        progress(f"{server.name}: memory: list/get until {checkpoint} requests")
        answered = drive_until(generator, server, mix, answered, checkpoint)
        readings.append(MemoryReading(answered, resident_memory_bytes(server.pid)))
    return readings


def drive_until(
    generator: LoadGenerator, server: RunningServer, load: Load, answered: int, total: int
) -> int:
    """Runs the load in rounds sized by the rate seen so far until `total` answers (a little
    more: wrk counts whole seconds); returns the number reached."""
    seconds = 2.0
    while answered < total:
        [result] = generator.run(server.url, [load], seconds=seconds)
        answered += result.requests
        rate = result.requests / result.seconds if result.seconds else 0.0
        if rate:
            seconds = min(MEMORY_ROUND_SECONDS, max(1.0, (total - answered) / rate))
    return answered


def progress(message: str) -> None:
    print(f"... {message}", file=sys.stderr, flush=True)
