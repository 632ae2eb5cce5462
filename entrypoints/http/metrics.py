"""Prometheus metrics of one server process."""

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from entrypoints.bootstrap import Services

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class Metrics:
    def __init__(self, services: Callable[[], Services | None]) -> None:
        self.registry = CollectorRegistry()
        self._requests = Counter(
            "todo_api_http_requests",
            "HTTP requests answered, by route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self._latency = Histogram(
            "todo_api_http_request_duration_seconds",
            "Time from the request's arrival to the end of its answer.",
            ["method", "route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.login_failures = Counter(
            "todo_api_login_failures",
            "Failed logins and failed password confirmations.",
            registry=self.registry,
        )
        self.throttled = Counter(
            "todo_api_throttled",
            "Requests refused by brute-force protection or overload, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.registry.register(_Resources(services))
        # Each (method, route, status)'s two series, found once: labels() validates and locks
        # on every call. Bounded: routes are templates, and a method no route has is "OTHER"
        # (some HTTP parsers let any word through as a method).
        self._series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        method = method if method in _METHODS else "OTHER"
        key = (method, route, status)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = (
                self._requests.labels(method, route, str(status)),
                self._latency.labels(method, route),
            )
        requests, latency = series
        requests.inc()
        latency.observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _Resources(Collector):
    """Read at each scrape: the connection pool and the queues of password work."""

    def __init__(self, services: Callable[[], Services | None]) -> None:
        self._services = services

    def collect(self) -> Iterator[Metric]:
        services = self._services()
        if services is None:
            return
        stats = services.pool.get_stats()
        pool = GaugeMetricFamily(
            "todo_api_db_pool_connections", "Database pool connections, by state.", labels=["state"]
        )
        size, idle = stats.get("pool_size", 0), stats.get("pool_available", 0)
        pool.add_metric(["open"], size)
        pool.add_metric(["idle"], idle)
        pool.add_metric(["in_use"], size - idle)
        pool.add_metric(["max"], stats.get("pool_max", 0))
        yield pool
        yield GaugeMetricFamily(
            "todo_api_db_pool_waiting",
            "Requests waiting for a database connection.",
            value=services.database.waiting,
        )
        yield GaugeMetricFamily(
            "todo_api_password_hashing_waiting",
            "Password hashes waiting for a free core.",
            value=services.password_hashes_waiting,
        )
        yield GaugeMetricFamily(
            "todo_api_password_strength_checks_waiting",
            "Password strength checks waiting for the zxcvbn thread.",
            value=services.password_strength_checks_waiting,
        )
