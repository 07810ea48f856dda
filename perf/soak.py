"""A long hold of POST /orders with the system's state recorded every second: where the tail
comes from when a rate held for a minute does not hold for ten.

    .venv/bin/python -m perf.soak --rate 1000 --minutes 10      (make soak RATE=1000 MINUTES=10)

Starts the stack make bench measures (this machine's MariaDB, Redis, RabbitMQ; every order with
a token and a new Idempotency-Key), holds `--rate` orders/s open-loop, and records per second:
the answers (rate, p50/p99, failures, by when each request was scheduled), each process's CPU,
the backlog (PENDING orders, outbox rows, each queue's depth), the order web's group commits
(batches, their mean size and transaction time), garbage-collection pauses of every process
(python_gc_pause_seconds) and MariaDB's commits, log fsyncs and purge lag. Prints a line per
minute and the drift of the last minute against the first; writes
perf/reports/soak-<time>.json and draws it (soak-<time>.png).
"""

import argparse
import contextlib
import datetime
import json
import threading
import time
from pathlib import Path

import httpx
import pika
import pymysql
from prometheus_client.parser import text_string_to_metric_families

from devstack import throwaway
from devstack.processes import ROOT
from devstack.real_stack import real_stack
from perf import chart, cpu_priority, openloop
from perf.bench import CpuPerOrder, cpu_seconds, seconds_to_drain, servers_on_this_machine
from service_kit.messaging import events

REPORTS = ROOT / "perf" / "reports"
P99_LIMIT_MS = 50.0
DRIFT_LIMIT = 0.2  # the last minute within 20% of the first
MARIADB_STATUS = ("Com_commit", "Innodb_data_fsyncs", "Innodb_history_list_length")
# Sums and counts read from /metrics, per second as differences.
METRIC_SUMS = {
    "group_commit_batch_size": "group_commit_batch",
    "group_commit_duration_seconds": "group_commit_s",
    "python_gc_pause_seconds": "gc_pause_s",
}
# Counters read from /metrics: the PENDING backlog is the orders created less those settled,
# because counting PENDING rows scans the whole orders table, on the database being measured.
METRIC_TOTALS = {"orders_created": "orders_created", "orders_settled": "orders_settled"}


def _database(url: str) -> pymysql.Connection:
    return pymysql.connect(host="127.0.0.1", user="root", database=url.rsplit("/", 1)[1])


def _scalar(connection: pymysql.Connection, query: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(query)
        return int(cursor.fetchone()[1 if query.startswith("SHOW") else 0] or 0)


def metric_sums(text: str) -> dict[str, float]:
    """Each histogram of METRIC_SUMS in a /metrics page as `<short name>_sum` and `_count`, and
    each counter of METRIC_TOTALS as `<short name>_total` (summed over its labels)."""
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            suffix = sample.name.rsplit("_", 1)[1]
            if family.name in METRIC_SUMS and suffix in ("sum", "count"):
                key = f"{METRIC_SUMS[family.name]}_{suffix}"
            elif family.name in METRIC_TOTALS and suffix == "total":
                key = f"{METRIC_TOTALS[family.name]}_total"
            else:
                continue
            totals[key] = totals.get(key, 0.0) + sample.value
    return totals


class Sampler:
    """Every second, in a thread of its own: the state named in the module's docstring."""

    def __init__(self, stack, parts: dict[str, int]) -> None:  # noqa: ANN001
        self.parts = parts
        self.databases = stack.databases
        self.broker_url = stack.services.env["BROKER_URL"]
        self.metrics_urls = list(stack.services.metrics_urls.values())
        self.samples: list[dict] = []
        self._scraped: dict[str, dict[str, float]] = {}  # per URL, the last page's sums
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-sampler", daemon=True)

    def __enter__(self) -> "Sampler":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        order_db, product_db = (_database(self.databases[n]) for n in ("order", "product"))
        for connection in (order_db, product_db):
            connection.autocommit(True)
        broker = pika.BlockingConnection(pika.URLParameters(self.broker_url))
        channel = broker.channel()
        queues = sorted(events.queues())
        try:
            before = self._counters(order_db)
            started = last = time.monotonic()
            # A sample a second, labelled with the second it closes: one that took longer than
            # a second (a loaded machine) skips seconds rather than shifting the later ones.
            while not self._stop.wait(max(0.0, 1.0 - (time.monotonic() - started) % 1.0)):
                now = self._counters(order_db)
                elapsed = time.monotonic()
                span = elapsed - last
                sample = {"second": int(elapsed - started) - 1, "span_s": round(span, 2)}
                last = elapsed
                for key, value in now.items():  # per second, whatever the span
                    sample[key] = round((value - before.get(key, 0.0)) / span, 6)
                # The services' counters count since the stack started: what was created and
                # is not settled yet.
                sample["pending_orders"] = int(
                    now.get("orders_created_total", 0.0) - now.get("orders_settled_total", 0.0)
                )
                sample["outbox_rows"] = _scalar(order_db, "SELECT COUNT(*) FROM outbox") + _scalar(
                    product_db, "SELECT COUNT(*) FROM outbox"
                )
                sample["queued_events"] = {
                    queue: channel.queue_declare(queue, passive=True).method.message_count
                    for queue in queues
                }
                sample["mariadb_history_list_length"] = int(now["Innodb_history_list_length"])
                self.samples.append(sample)
                before = now
        finally:
            broker.close()
            order_db.close()
            product_db.close()

    def _counters(self, mariadb: pymysql.Connection) -> dict[str, float]:
        counters = {f"cpu_s_{name}": cpu_seconds(pid) for name, pid in self.parts.items()}
        with mariadb.cursor() as cursor:
            cursor.execute(
                "SHOW GLOBAL STATUS WHERE Variable_name IN ("
                + ",".join(f"'{name}'" for name in MARIADB_STATUS)
                + ")"
            )
            counters.update({name: float(value) for name, value in cursor.fetchall()})
        for url in self.metrics_urls:
            # A scrape that fails under load keeps that process's last sums: no false drop.
            with contextlib.suppress(httpx.HTTPError):
                self._scraped[url] = metric_sums(httpx.get(url, timeout=1.0).text)
            for key, value in self._scraped.get(url, {}).items():
                counters[key] = counters.get(key, 0.0) + value
        return counters


def minutes(timeline: list[dict]) -> list[dict]:
    """The timeline in whole minutes: answered, failures, the worst second's p99 and the median
    second's, and the largest backlog."""
    out = []
    for start in range(0, len(timeline) - 59, 60):
        seconds = timeline[start : start + 60]
        p99s = sorted(s["p99_ms"] for s in seconds if s["p99_ms"] is not None)
        out.append(
            {
                "minute": start // 60 + 1,
                "answered": sum(s["answered"] for s in seconds),
                "failed": sum(s["failed"] for s in seconds),
                "p99_ms": _percentile([s["p99_ms"] for s in seconds if s["p99_ms"]], 50),
                "worst_second_p99_ms": p99s[-1] if p99s else None,
                "pending_max": max(s.get("pending_orders", 0) for s in seconds),
                "queued_max": max(sum(s.get("queued_events", {}).values()) for s in seconds),
            }
        )
    return out


def _percentile(values: list[float], p: float) -> float | None:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else None


def drift(by_minute: list[dict], whole: openloop.Result) -> dict:
    """The last minute against the first: p99 of the minute's answers, and the backlog."""
    if len(by_minute) < 2:
        return {"within_limit": None}
    first, last = by_minute[0], by_minute[-1]
    p99 = [_minute_p99(whole, m["minute"]) for m in (first, last)]
    backlog = [first["pending_max"], last["pending_max"]]
    # A minute without a single answer (every request failed) has no p99: it cannot hold.
    p99_drift = (p99[1] - p99[0]) / p99[0] if p99[0] and p99[1] is not None else None
    backlog_rise = backlog[1] - backlog[0]
    return {
        "first_minute_p99_ms": p99[0],
        "last_minute_p99_ms": p99[1],
        "p99_drift": None if p99_drift is None else round(p99_drift, 3),
        "first_minute_pending_max": backlog[0],
        "last_minute_pending_max": backlog[1],
        # A backlog that stays within a second's orders is no backlog, however it moves.
        "within_limit": (p99_drift is not None and p99_drift <= DRIFT_LIMIT)
        and (backlog_rise <= max(DRIFT_LIMIT * backlog[0], whole.rate)),
    }


def _minute_p99(whole: openloop.Result, minute: int) -> float | None:
    first_second = (minute - 1) * 60
    return _percentile(
        [
            latency
            for latency, second in zip(whole.latencies_ms, whole.scheduled_s, strict=True)
            if first_second <= second < first_second + 60
        ],
        99,
    )


def hold(stack, url: str, request: dict, *, rate: float, seconds: float) -> dict:  # noqa: ANN001
    """`rate` orders/s for `seconds` with the Sampler running; the figures of the hold."""
    parts = {name: process.pid for name, process in stack.services.processes.items()}
    parts.update(servers_on_this_machine())
    seconds_to_drain(stack)
    with Sampler(stack, parts) as sampler, CpuPerOrder(parts) as cpu:
        result = openloop.run(url, rate=rate, seconds=seconds, **request)
    samples = {sample["second"]: sample for sample in sampler.samples}
    timeline = [
        {**samples.get(answer["second"], {}), **answer} for answer in result.per_second(201)
    ]
    by_minute = minutes(timeline)
    summary = result.summary()
    return {
        **summary,
        "passed": result.failed(201) == 0 and result.percentile(99) <= P99_LIMIT_MS,
        "cpu_us_per_order": cpu.per_order(result.statuses[201]),
        "minutes": by_minute,
        "drift": drift(by_minute, result),
        "timeline": timeline,
    }


def print_minutes(figures: dict) -> None:
    for minute in figures["minutes"]:
        print(
            f"  minute {minute['minute']:>2}: {minute['answered'] / 60:7.0f}/s answered, "
            f"failed {minute['failed']}, p99 of its seconds (median) {minute['p99_ms']} ms, "
            f"worst second {minute['worst_second_p99_ms']} ms, PENDING up to "
            f"{minute['pending_max']}, queued up to {minute['queued_max']}",
            flush=True,
        )
    d = figures["drift"]
    if d.get("within_limit") is not None:
        change = "no answer" if d["p99_drift"] is None else f"{d['p99_drift']:+.0%}"
        print(
            f"  drift, last minute against the first: p99 {d['first_minute_p99_ms']} → "
            f"{d['last_minute_p99_ms']} ms ({change}), PENDING up to "
            f"{d['first_minute_pending_max']} → {d['last_minute_pending_max']}: "
            f"{'within' if d['within_limit'] else 'OVER'} the limit",
            flush=True,
        )


STOCK = 10**9  # of the product ordered: enough for any run


def order_request(services) -> tuple[dict, int]:  # noqa: ANN001
    """A product with STOCK, and the POST /orders request make bench sends for it (a token, and
    a new Idempotency-Key per order, as a careful client sends); the product's id."""
    authorization = throwaway.bearer(services.env)
    product = httpx.post(
        f"{services.product_url}/products",
        json={"name": "Bench", "price": 1500, "qty": STOCK},
        headers=authorization,
    ).json()
    request = {
        "method": "POST",
        "body": json.dumps({"productId": product["id"], "qty": 1}).encode(),
        "headers": authorization,
        "unique_header": "Idempotency-Key",
    }
    return request, product["id"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--minutes", type=float, default=10)
    args = parser.parse_args()
    with contextlib.ExitStack() as run:
        broker = servers_on_this_machine().get("rabbitmq")
        if broker:
            run.enter_context(cpu_priority.in_background(broker))
        with real_stack() as stack:
            request, _ = order_request(stack.services)
            url = f"{stack.services.order_url}/orders"
            openloop.run(url, rate=300, seconds=3, **request)
            print(f"POST /orders held at {args.rate:.0f}/s for {args.minutes:g} min", flush=True)
            figures = hold(stack, url, request, rate=args.rate, seconds=args.minutes * 60)
    print_minutes(figures)
    print(
        f"whole hold: p50 {figures['p50_ms']} ms, p99 {figures['p99_ms']} ms, "
        f"{'held' if figures['passed'] else 'NOT held'}; CPU per order (µs): "
        + ", ".join(f"{k} {v}" for k, v in figures["cpu_us_per_order"].items())
    )
    REPORTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = REPORTS / f"soak-{stamp}.json"
    path.write_text(json.dumps(figures, indent=2))
    chart.draw_hold(figures, path.with_suffix(".png"), title=f"POST /orders at {args.rate:.0f}/s")
    print(f"written to {Path(path).relative_to(ROOT)} and drawn in {path.stem}.png")


if __name__ == "__main__":
    main()
