"""What is measured on each server: seeding through its HTTP API, the six scenarios of issue 4,
the list under a login storm, and resident memory over many requests."""

import json
import secrets
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

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


@dataclass(frozen=True, slots=True)
class Options:
    duration: float
    warmup: float
    connections: int
    memory: bool


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


def benchmark_server(
    server: RunningServer, generator: LoadGenerator, options: Options
) -> ServerReport:
    progress(f"{server.name}: seeding {SEEDED_TASKS} tasks through the API")
    seeded = seed(server.url)
    memory = measure_memory(server, generator, seeded, options) if options.memory else []
    results: dict[str, LoadResult] = {}
    for key, requests in scenarios(seeded).items():
        [result] = measure(generator, server, [Load(requests, options.connections)], options)
        results[key] = result
        progress(f"{server.name}: {SCENARIO_TITLES[key]}: {result.requests_per_second:.0f} req/s")
    storm_list, storm_login = measure(
        generator,
        server,
        [
            Load([list_request(seeded.reader)], options.connections),
            Load([login_request(seeded.reader.email)], STORM_LOGIN_CONNECTIONS),
        ],
        options,
    )
    progress(f"{server.name}: list under login storm: {storm_list.requests_per_second:.0f} req/s")
    return ServerReport(server.name, server.url, results, storm_list, storm_login, memory)


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
