"""Prometheus metrics: what dbapi counts, and the one text every scrape reads.

The names and labels are a contract with the dashboard (deploy/grafana/dbapi.json) and the
README. Label values are bounded: modules and actions that do not exist are `unknown`, views are
URL pattern names, methods outside HTTP's own are `other`, never a raw path, id or user name.

Under gunicorn each worker writes its numbers to files in PROMETHEUS_MULTIPROC_DIR
(prometheus-client's multiprocess mode), so one scrape of any worker covers them all; elsewhere
(runserver, the gRPC server, tests) the process's own registry is read. Nothing is recorded
unless METRICS_ENABLED: the `record_*` functions are the only way in, and each returns at once
when it is off.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from django.conf import settings

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.core import Metric

# Calls of a few milliseconds are the common case: finer buckets at the low end than the default.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _Metrics:
    """What dbapi counts. Made on first use (`_defined`), by a process that records or serves
    metrics: prometheus-client is not loaded by one that never does (METRICS_ENABLED off)."""

    def __init__(self):
        from prometheus_client import Counter, Histogram, disable_created_metrics

        # `_created` series would differ between the multiprocess and the single-process
        # registries, and Prometheus does not need them.
        disable_created_metrics()
        self.action_calls = Counter(
            "dbapi_action_calls",
            "Action calls answered, over HTTP and gRPC, by outcome: ok or the problem's HTTP "
            "status.",
            ["module", "action", "transport", "outcome"],
        )
        self.action_duration = Histogram(
            "dbapi_action_duration_seconds",
            "Seconds from a call's arrival in the pipeline to its answer (for a stream: its last "
            "row).",
            ["module", "action", "transport"],
            buckets=BUCKETS,
        )
        self.http_requests = Counter(
            "dbapi_http_requests",
            "HTTP requests answered, by view (URL pattern name), method and status.",
            ["view", "method", "status"],
        )
        self.http_duration = Histogram(
            "dbapi_http_request_duration_seconds",
            "Seconds to answer an HTTP request (until the answer's first byte for a stream).",
            ["view", "method"],
            buckets=BUCKETS,
        )
        self.hits = Counter("dbapi_hits", "Hits counted on the hit counters.")
        self.otp_verifications = Counter(
            "dbapi_otp_verifications",
            "Second-factor codes checked: accepted, rejected, throttled (not checked), replayed.",
            ["result"],
        )
        self.rate_limited = Counter(
            "dbapi_rate_limited", "Action calls refused over their client's rate (429).", ["module"]
        )
        self.dependency_errors = Counter(
            "dbapi_dependency_errors",
            "Failures of what dbapi depends on: database (answered 503), cache, upstream.",
            ["dependency"],
        )
        # The labelled series a call records into, by its labels: prometheus-client's `labels()`
        # checks and joins them under a lock on every call, for a child that never changes.
        self.action_series: dict[tuple[str, str, str, str], tuple[Any, Any]] = {}
        self.http_series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def action(self, module: str, action: str, transport: str, outcome: str) -> tuple[Any, Any]:
        """The calls counter and duration histogram of these labels."""
        key = (module, action, transport, outcome)
        series = self.action_series.get(key)
        if series is None:
            series = self.action_series[key] = (
                self.action_calls.labels(module, action, transport, outcome),
                self.action_duration.labels(module, action, transport),
            )
        return series

    def http(self, view: str, method: str, status: int) -> tuple[Any, Any]:
        """The requests counter and duration histogram of these labels."""
        key = (view, method, status)
        series = self.http_series.get(key)
        if series is None:
            series = self.http_series[key] = (
                self.http_requests.labels(view, method, str(status)),
                self.http_duration.labels(view, method),
            )
        return series


_lock = threading.Lock()
_made: _Metrics | None = None


def _defined() -> _Metrics:
    """The process's metrics, made once."""
    global _made
    if _made is None:
        with _lock:
            if _made is None:
                _made = _Metrics()
    return _made


def __getattr__(name: str) -> Any:
    # The content type of `exposition()`, prometheus-client's, read with it.
    if name == "CONTENT_TYPE":
        from prometheus_client import CONTENT_TYPE_LATEST

        return CONTENT_TYPE_LATEST
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


OTP_RESULTS = frozenset({"accepted", "rejected", "throttled", "replayed"})
DEPENDENCIES = frozenset({"database", "cache", "upstream"})
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})
UNKNOWN = "unknown"

# Collectors read at scrape time (the hits pending in Redis), registered by the apps that own
# what they read.
_scrape_time: list[Callable[[], Iterable[Metric]]] = []


def enabled() -> bool:
    return settings.METRICS_ENABLED


def record_action(
    *, module: str, action: str, transport: str, outcome: str, seconds: float
) -> None:
    """One action call answered; `module` and `action` must be ones that exist, else UNKNOWN."""
    if settings.METRICS_ENABLED:
        calls, duration = (_made or _defined()).action(module, action, transport, outcome)
        calls.inc()
        duration.observe(seconds)


def record_http(*, view: str, method: str, status: int, seconds: float) -> None:
    """One HTTP request answered by `view` (a URL pattern's name, or a fast route's)."""
    if settings.METRICS_ENABLED:
        method = method if method in METHODS else "other"
        requests, duration = (_made or _defined()).http(view, method, status)
        requests.inc()
        duration.observe(seconds)


def record_hit() -> None:
    if settings.METRICS_ENABLED:
        (_made or _defined()).hits.inc()


def record_otp_verification(result: str) -> None:
    """A code checked, with its result (OTP_RESULTS)."""
    if settings.METRICS_ENABLED:
        (_made or _defined()).otp_verifications.labels(result).inc()


def record_rate_limited(module: str) -> None:
    if settings.METRICS_ENABLED:
        (_made or _defined()).rate_limited.labels(module).inc()


def record_dependency_error(dependency: str) -> None:
    """A dependency (DEPENDENCIES) failed a request or call."""
    if settings.METRICS_ENABLED:
        (_made or _defined()).dependency_errors.labels(dependency).inc()


def read_at_scrape(collect: Callable[[], Iterable[Metric]]) -> None:
    """Add metrics computed when scraped (a gauge of something outside the process)."""
    if collect not in _scrape_time:
        _scrape_time.append(collect)


class _ScrapeTime:
    def collect(self) -> Iterable[Metric]:
        for collect in _scrape_time:
            yield from collect()


class _Process:
    """The process's own registry, as one collector of another registry."""

    def collect(self) -> Iterable[Metric]:
        from prometheus_client import REGISTRY

        return REGISTRY.collect()


def registry() -> CollectorRegistry:
    """What a scrape reads: every gunicorn worker's numbers in multiprocess mode, else this
    process's (with its process and GC metrics); plus the scrape-time metrics."""
    from prometheus_client import CollectorRegistry, multiprocess

    _defined()  # every metric is exported, if only at zero, whether or not it was recorded here
    found = CollectorRegistry(auto_describe=False)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(found)
    else:
        found.register(_Process())
    found.register(_ScrapeTime())
    return found


def exposition() -> bytes:
    """The metrics in Prometheus' text format."""
    from prometheus_client import generate_latest

    return generate_latest(registry())


def serve(bind: str) -> tuple[Any, threading.Thread]:
    """Serve the metrics on `bind` (host:port) from a thread of their own, for a process that has
    no HTTP server of its own (the gRPC server); returns the server and its thread."""
    from prometheus_client import start_http_server

    host, _, port = bind.rpartition(":")
    if not host or not port.isdigit():
        raise OSError(f"GRPC_METRICS_BIND: {bind!r} is not host:port.")
    return start_http_server(int(port), addr=host.strip("[]"), registry=_Exposed())


class _Exposed:
    """What start_http_server reads on each scrape: `registry()`, made anew each time."""

    def collect(self) -> Iterable[Metric]:
        return registry().collect()
