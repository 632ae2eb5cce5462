"""Load generators: wrk when it is installed, else a small HTTP/1.1 client on asyncio streams.

Both run closed loops: each keep-alive connection sends its next request as soon as the answer
to the previous one has arrived, cycling through a list of prepared requests. Answers still in
flight when the time is up are not counted.
"""

import asyncio
import contextlib
import json
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

WRK_TIMEOUT = "60s"  # a login queued behind 30 others at bcrypt cost 12 takes seconds


@dataclass(frozen=True, slots=True)
class HttpRequest:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None


@dataclass(frozen=True, slots=True)
class Load:
    """`connections` connections cycling through `requests`."""

    requests: Sequence[HttpRequest]
    connections: int


@dataclass(frozen=True, slots=True)
class LoadResult:
    statuses: dict[int, int]
    """Answers received, by status code."""
    socket_errors: int
    seconds: float
    p50_ms: float | None
    p99_ms: float | None
    """None when no answer arrived in time."""

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    @property
    def non_2xx(self) -> int:
        return sum(count for status, count in self.statuses.items() if not 200 <= status < 300)

    @property
    def requests_per_second(self) -> float:
        """Successful (2xx) answers per second."""
        return (self.requests - self.non_2xx) / self.seconds if self.seconds else 0.0


class LoadGenerator:
    """Runs loads against a server, all of them at the same time."""

    def __init__(self, *, python_only: bool = False) -> None:
        self._wrk = None if python_only else shutil.which("wrk")

    @property
    def name(self) -> str:
        if self._wrk:
            return f"wrk ({self._wrk}), one single-threaded wrk per load"
        return "Python asyncio load generator"

    def run(self, base_url: str, loads: Sequence[Load], *, seconds: float) -> list[LoadResult]:
        """Drives every load for `seconds`, all at once."""
        if self._wrk is None:
            return asyncio.run(_python_loads(base_url, loads, seconds))
        wrk = self._wrk
        with ThreadPoolExecutor(max_workers=len(loads)) as pool:
            running = [pool.submit(_wrk_load, wrk, base_url, load, seconds) for load in loads]
            return [future.result() for future in running]


# --- wrk -----------------------------------------------------------------------------------

# One wrk thread per load: its connections, its own Lua state. The statuses are tallied in
# response() (cheap next to the servers measured here) and reported by done() as one JSON line.
_WRK_SCRIPT = """
local threads = {}
local prepared = {}
local next_index = 0
statuses = {}

function setup(thread)
  threads[#threads + 1] = thread
end

function init(args)
%(prepare)s
end

function request()
  next_index = next_index %% #prepared + 1
  return prepared[next_index]
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local counts = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      counts[#counts + 1] = string.format('"%%d": %%d', status, count)
    end
  end
  local e = summary.errors
  io.write(string.format(
    '\\nRESULT {"statuses": {%%s}, "socket_errors": %%d, "duration_us": %%d,'
    .. ' "p50_us": %%d, "p99_us": %%d}\\n',
    table.concat(counts, ", "), e.connect + e.read + e.write + e.timeout, summary.duration,
    latency:percentile(50.0), latency:percentile(99.0)))
end
"""


def _lua_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _wrk_script(requests: Sequence[HttpRequest]) -> str:
    lines = []
    for request in requests:
        headers = ", ".join(
            f"[{_lua_string(name)}] = {_lua_string(value)}"
            for name, value in request.headers.items()
        )
        body = "nil" if request.body is None else _lua_string(request.body)
        lines.append(
            f"  prepared[#prepared + 1] = wrk.format({_lua_string(request.method)}, "
            f"{_lua_string(request.path)}, {{{headers}}}, {body})"
        )
    return _WRK_SCRIPT % {"prepare": "\n".join(lines)}


def _wrk_load(wrk: str, base_url: str, load: Load, seconds: float) -> LoadResult:
    with tempfile.TemporaryDirectory(prefix="todo-perf-wrk-") as directory:
        script = Path(directory) / "load.lua"
        script.write_text(_wrk_script(load.requests))
        command = [
            wrk,
            "--threads=1",
            f"--connections={load.connections}",
            f"--duration={max(1, round(seconds))}s",  # wrk counts whole seconds
            f"--timeout={WRK_TIMEOUT}",
            f"--script={script}",
            base_url,
        ]
        completed = subprocess.run(  # noqa: S603 - wrk, with arguments built here
            command, capture_output=True, text=True, check=False
        )
    marker = next(
        (line for line in completed.stdout.splitlines() if line.startswith("RESULT ")), None
    )
    if completed.returncode != 0 or marker is None:
        raise RuntimeError(f"wrk failed ({completed.returncode}): {completed.stderr.strip()}")
    raw = json.loads(marker.removeprefix("RESULT "))
    statuses = {int(status): count for status, count in raw["statuses"].items()}
    answered = bool(statuses)
    return LoadResult(
        statuses=statuses,
        socket_errors=raw["socket_errors"],
        seconds=raw["duration_us"] / 1e6,
        p50_ms=raw["p50_us"] / 1000 if answered else None,
        p99_ms=raw["p99_us"] / 1000 if answered else None,
    )


# --- Python fallback -----------------------------------------------------------------------


@dataclass(slots=True)
class _Tally:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    socket_errors: int = 0


async def _python_loads(base_url: str, loads: Sequence[Load], seconds: float) -> list[LoadResult]:
    url = urlsplit(base_url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    tallies = [_Tally() for _ in loads]
    started = time.perf_counter()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await asyncio.gather(
                *(
                    _connection(host, port, _encoded(load.requests, host, port), offset, tally)
                    for load, tally in zip(loads, tallies, strict=True)
                    for offset in range(load.connections)
                )
            )
    elapsed = time.perf_counter() - started
    return [_result_of(tally, elapsed) for tally in tallies]


def _encoded(requests: Sequence[HttpRequest], host: str, port: int) -> list[bytes]:
    encoded = []
    for request in requests:
        body = (request.body or "").encode()
        head = [f"{request.method} {request.path} HTTP/1.1", f"Host: {host}:{port}"]
        head += [f"{name}: {value}" for name, value in request.headers.items()]
        head.append(f"Content-Length: {len(body)}")
        encoded.append(("\r\n".join(head) + "\r\n\r\n").encode() + body)
    return encoded


async def _connection(
    host: str,
    port: int,
    requests: list[bytes],
    offset: int,
    tally: _Tally,
) -> None:
    index = offset
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while True:
            sent = time.perf_counter()
            writer.write(requests[index % len(requests)])
            index += 1
            try:
                status, keep_alive = await _read_response(reader)
            except (OSError, asyncio.IncompleteReadError):
                tally.socket_errors += 1
                keep_alive = False
            else:
                tally.latencies.append(time.perf_counter() - sent)
                tally.statuses[status] += 1
            if not keep_alive:
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
    finally:
        writer.close()


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """The status of one answer and whether the connection stays open; the body is skipped."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    status = int(head[0].split(" ", 2)[1])
    headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in head[1:] if line)
    }
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif status not in (204, 304):
        raise RuntimeError(f"answer without Content-Length (status {status}) is not supported")
    return status, headers.get("connection", "").lower() != "close"


def _result_of(tally: _Tally, seconds: float) -> LoadResult:
    latencies = sorted(tally.latencies)

    def percentile(share: float) -> float | None:
        return latencies[round(share * (len(latencies) - 1))] * 1000 if latencies else None

    return LoadResult(
        statuses=dict(tally.statuses),
        socket_errors=tally.socket_errors,
        seconds=seconds,
        p50_ms=percentile(0.50),
        p99_ms=percentile(0.99),
    )
