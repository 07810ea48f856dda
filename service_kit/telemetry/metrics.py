"""Every Prometheus metric of both services, in one catalog, and their exposition.

A web service's gunicorn workers are separate processes: gunicorn's configuration points
PROMETHEUS_MULTIPROC_DIR at a folder of its own before any worker imports this module, each
worker then writes its samples to memory-mapped files there, and /metrics, served by any one
of them, adds up all of them (prometheus_client's multiprocess mode). A worker process is one
process: its metrics are served by prometheus_client's own HTTP server on a port of its own."""

import gc
import logging
import os
import time
from collections.abc import Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    start_http_server,
)

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
_log = logging.getLogger(__name__)
disable_created_metrics()  # a `_created` series beside every counter: noise for a dashboard

# Requests, per operation of the specs (RED); `(other)`: no operation (an unknown route, the
# specs' own documents, Swagger UI).
NO_OPERATION = "(other)"
_SIZE_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500)  # writes per commit, events per batch
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
http_requests = Counter(
    "http_server_requests",
    "HTTP requests answered, by operation and status",
    ["operation", "status"],
)
http_duration = Histogram(
    "http_server_request_duration_seconds",
    "Time from a request reaching the app to its answer, by operation",
    ["operation"],
    buckets=_LATENCY_BUCKETS,
)
rate_limited = Counter(
    "http_server_rate_limited",
    "Requests refused with 429 by a rate-limit policy, by operation and policy",
    ["operation", "policy"],
)
rate_limiter_failures = Counter(
    "http_server_rate_limiter_failures",
    "Requests of limited operations served unchecked (fail open): the limiter's storage failed",
    ["operation"],
)

# Storage.
group_commit_batch = Histogram(
    "group_commit_batch_size",
    "Writes committed together in one transaction by a group commit",
    ["name"],
    buckets=_SIZE_BUCKETS,
)
group_commit_duration = Histogram(
    "group_commit_duration_seconds",
    "Time a group commit's transaction took, from its first statement to its commit",
    ["name"],
    buckets=_LATENCY_BUCKETS,
)
db_connections_in_use = Gauge(
    "db_pool_connections_in_use",
    "Database connections checked out of the pool",
    ["pool"],
    multiprocess_mode="livesum",
)
cache_lookups = Counter(
    "cache_lookups",
    "Cache look-ups by cache and result (product knowledge: fresh, stale, shared or miss)",
    ["cache", "result"],
)

# Events.
events_relayed = Counter(
    "outbox_events_relayed", "Outbox events the broker accepted, by type", ["type"]
)
relay_lease_held = Gauge(
    "outbox_relay_lease_held",
    "1 while this worker's relay holds its outbox's lease (publishes), 0 while it stands by",
    multiprocess_mode="livemax",
)
consumer_batch = Histogram(
    "consumer_batch_size_events",
    "Events handed to a consumer's handler at once, by queue",
    ["queue"],
    buckets=_SIZE_BUCKETS,
)
events_applied = Counter(
    "consumer_events_applied", "Events applied and acknowledged, by queue", ["queue"]
)
events_redelivered = Counter(
    "consumer_events_redelivered",
    "Events the broker delivered again (the inbox makes them change nothing), by queue",
    ["queue"],
)
events_retried = Counter(
    "consumer_events_retried",
    "Events that failed and were handed back for redelivery, by queue",
    ["queue"],
)
events_dead_lettered = Counter(
    "consumer_events_dead_lettered",
    "Events of messages that are not valid events, sent to the dead-letter queue, by queue",
    ["queue"],
)
worker_holding_back = Gauge(
    "worker_holding_back",
    "1 while the worker's order-flow tasks wait for the machine to be less busy with requests",
    multiprocess_mode="livemax",
)
worker_held_back = Counter(
    "worker_held_back_seconds", "Time the worker's order-flow tasks waited for a busy machine"
)
queue_messages = Gauge(
    "broker_queue_messages",
    "Messages waiting in a queue as the broker last said (its consumer's lag; dead letters)",
    ["queue"],
    multiprocess_mode="mostrecent",
)

# The process.
gc_pauses = Histogram(
    "python_gc_pause_seconds",
    "Time each garbage collection stopped the process, by generation",
    ["generation"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25),
)

# The business.
orders_created = Counter("orders_created", "Orders stored PENDING")
orders_settled = Counter(
    "orders_settled", "Orders moved from PENDING by their stock result", ["status"]
)
stock_reservations = Counter(
    "stock_reservations", "Orders the product worker decided on, by outcome", ["outcome"]
)


def exposition() -> tuple[bytes, str]:
    """(body, content type) of every metric of this process, or of every worker process of
    this web service in multiprocess mode."""
    directory = os.environ.get(MULTIPROCESS_DIR)
    if not directory:
        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)
    return generate_latest(registry), CONTENT_TYPE_LATEST


def serve(host: str, port: int) -> None:
    """A worker process's /metrics on a port of its own (a daemon thread)."""
    start_http_server(port, addr=host)
    _log.info("metrics on http://%s:%d/metrics", host, port)


def register(collector: object, registry: CollectorRegistry = REGISTRY) -> None:
    """A collector whose values are read when scraped (the outbox's backlog)."""
    registry.register(collector)  # type: ignore[arg-type]


def count_each(counter: Counter, labels: Iterable[str]) -> None:
    """One increment of `counter` per label value given (e.g. per event type)."""
    counts: dict[str, int] = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    for label, count in counts.items():
        counter.labels(label).inc(count)


_gc_timed_in: int | None = None  # the process whose collections are timed


def time_gc_pauses() -> None:
    """Every garbage collection of this process observed in python_gc_pause_seconds (a gc
    callback; a forked process calls this again for its own)."""
    global _gc_timed_in
    if _gc_timed_in == os.getpid():
        return
    _gc_timed_in = os.getpid()
    by_generation = [gc_pauses.labels(str(generation)) for generation in range(3)]
    started = [0.0]

    def observe(phase: str, info: dict) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            by_generation[info["generation"]].observe(time.perf_counter() - started[0])

    gc.callbacks.append(observe)
