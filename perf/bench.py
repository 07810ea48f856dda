"""`make bench`: the order hot path measured on this machine, in one run.

Starts the real stack (both web services and both workers, production settings) on the real
MariaDB (durable commits), Redis and RabbitMQ in throw-away databases / vhost, and measures with
an open-loop generator (perf/openloop.py):

1. the ceiling: a bare Flask endpoint on the same gunicorn settings, no I/O, stepped up before
   the stack starts and again after it stops (the machine's drift); the ceiling is the highest
   rate it holds for 60 s before the stack starts, as POST /orders must (its best step, else a
   passed one at least a tenth lower, three holds at most): a run where it holds none is void;
2. POST /orders at 250/s for 30 s: what a lone order waits (p50);
3. POST /orders: the offered rate stepped up (a failed step is tried once more before the
   search stops); the highest rate with p99 <= 50 ms and no error, whose backlog would likely
   drain in time, is then held for 60 s (if it does not hold, a passed rate at least a tenth
   lower, three holds at most; web worker RSS and every process's CPU per order measured
   meanwhile). Each step and hold starts once every event of the earlier orders is consumed,
   and a hold counts only if its orders are all settled within 30 s after it;
4. POST /orders held for 10 minutes at 0.4 × the ceiling, with the system's state recorded every
   second (perf/soak.py): held if p99 <= 50 ms, every order settled, and the last minute's p99
   and backlog within 20% of the first's;
5. GET /products/{id} served from the cache, once every event is consumed;
6. after the load: how long until every order is settled, and the accounting — orders stored
   = 201s returned (plus at most the requests sent but never answered, e.g. cancelled in flight
   at a hold's end), order.created applied by product-service = logged by order-service =
   orders, stock decremented by exactly the ordered total.

The machine's RabbitMQ runs behind the web on the CPU for the run, as the compose file deploys
the broker (perf/cpu_priority.py; `--broker-priority unchanged` leaves it as found).

Prints one table, writes the figures to perf/reports/bench-<time>.json and draws them beside it
(bench-<time>.png, and the long hold over time in bench-<time>-long-hold.png; perf/chart.py).
"""

import argparse
import contextlib
import datetime
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil
import pymysql
from prometheus_client.parser import text_string_to_metric_families

from devstack.processes import ROOT, free_port, stop
from devstack.real_stack import ACCESS_LOG, real_stack
from perf import chart, cpu_priority, openloop

REPORTS = ROOT / "perf" / "reports"
P99_LIMIT_MS = 50.0


def passes(result: openloop.Result, expected: int) -> bool:
    return result.failed(expected) == 0 and result.percentile(99) <= P99_LIMIT_MS


def step_up(
    url: str,
    rates: list[int],
    seconds: float,
    expected: int,
    *,
    settle: Callable[[], float | None] = lambda: None,
    **request,
) -> list[dict]:
    """Each rate for `seconds`, up to the first that fails twice in a row (this machine's speed
    drifts within seconds: one slow spell alone would end the search early). `settle` runs
    before the first step and after each (what it returns, the seconds it waited, is noted).
    Every attempt is reported."""
    steps: list[dict] = []
    settle()
    for rate in rates:
        for _attempt in range(2):
            result = openloop.run(url, rate=rate, seconds=seconds, **request)
            summary = {**result.summary(), "passed": passes(result, expected)}
            drained = settle()
            summary["drained_within_s"] = None if drained is None else round(drained, 1)
            steps.append(summary)
            print(
                f"  {rate:>6}/s  p50 {summary['p50_ms']:>6} ms  p99 {summary['p99_ms']:>7} ms  "
                f"failed {result.failed(expected)}  generator CPU {summary['generator_cpu']:.0%}"
                f"  {'ok' if summary['passed'] else 'FAIL'}",
                flush=True,
            )
            if summary["passed"]:
                break
        else:
            break
    return steps


def rates_to_hold(
    steps: list[dict], *, stretch: float, most: int = 3, step_down: float = 0.9
) -> list[int]:
    """The rates worth holding, best first: those whose step passed, and whose backlog at the
    end of the step, `stretch` times longer in a hold, would drain within the 30 s allowed;
    then the other rates that passed. A hold that cannot settle in time only bloats the
    databases (every order stays) for the holds after it. The shortest drain of all steps is
    the events' own way through the system, which a longer load does not stretch.
    Each rate is at most `step_down` times the one before: a hold comes after one that
    failed, and the rates just below a failed one had passed their 10 s steps only as
    narrowly (at 07:25 UTC steps passed up to 4250/s at their second try, and the holds at
    4250, 4000 and 3750/s all failed)."""
    drains = [s["drained_within_s"] or 0.0 for s in steps]
    floor = min(drains, default=0.0)

    def drain_after_hold(step: dict) -> float:
        return floor + ((step["drained_within_s"] or 0.0) - floor) * stretch

    passed = sorted((s for s in steps if s["passed"]), key=lambda s: -s["offered_rps"])
    likely = [s for s in passed if drain_after_hold(s) <= SETTLE_LIMIT_S]
    held: list[int] = []
    for step in likely + [s for s in passed if s not in likely]:
        rate = int(step["offered_rps"])
        if len(held) < most and (not held or rate <= held[-1] * step_down):
            held.append(rate)
    return held


def best_rate(steps: list[dict]) -> int | None:
    passed = [step["offered_rps"] for step in steps if step["passed"]]
    return int(max(passed)) if passed else None


def measure_ceiling(seconds: float, rates: list[int], *, hold_s: float = 0) -> dict:
    """The bare endpoint's best step, then (with `hold_s`) the ceiling: the highest rate it
    holds for `hold_s` as POST /orders must (its best step, else a passed one at least a tenth
    lower, three holds at most). A run whose bare endpoint holds none is void: the machine was
    not steady enough to compare against."""
    port = free_port()
    env = {**os.environ, "BARE_PORT": str(port), **ACCESS_LOG}
    command = [
        str(Path(sys.executable).parent / "gunicorn"),
        "-c",
        "perf/bare_app.gunicorn.conf.py",
        "perf.bare_app:create_wsgi_app()",
    ]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/orders"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                httpx.post(url, json={"productId": 1, "qty": 1})
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        print("ceiling: bare Flask endpoint, no I/O", flush=True)
        request = {"method": "POST", "body": b'{"productId":1,"qty":1}'}
        steps = step_up(url, rates, seconds, 201, **request)
        best = best_rate(steps)
        held, holds = None, []
        for rate in rates_to_hold(steps, stretch=1) if hold_s else []:
            result = openloop.run(url, rate=rate, seconds=hold_s, **request)
            holds.append({**result.summary(), "passed": passes(result, 201)})
            print(
                f"  held {hold_s:.0f} s at {rate}/s: p50 {holds[-1]['p50_ms']} ms, p99 "
                f"{holds[-1]['p99_ms']} ms  {'ok' if holds[-1]['passed'] else 'FAIL'}",
                flush=True,
            )
            if holds[-1]["passed"]:
                held = rate
                break
        # This machine's speed of the moment (it drifts): the bare request's CPU at 2000/s.
        with CpuPerOrder({"bare": process.pid}) as cpu:
            probe = openloop.run(url, rate=2000, seconds=seconds, **request)
        us_per_request = cpu.per_order(probe.statuses[201])["bare"]
        print(f"  bare request at 2000/s: {us_per_request} µs of CPU each", flush=True)
        return {
            "steps": steps,
            "best_rps": best,
            "held_rps": held,
            "holds": holds,
            "cpu_us_per_request": us_per_request,
        }
    finally:
        stop(process)


class RssSampler:
    """Peak resident memory of every gunicorn worker of the web services, sampled every 0.5 s."""

    def __init__(self, masters: list[psutil.Process]) -> None:
        self.masters = masters
        self.peak_mb: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            for master in self.masters:
                for worker in master.children():
                    try:
                        key = f"{master.pid}/{worker.pid}"
                        rss = worker.memory_info().rss / 2**20
                        self.peak_mb[key] = max(self.peak_mb.get(key, 0.0), rss)
                    except psutil.NoSuchProcess:
                        pass


SERVERS = {"mariadb": "mariadbd", "rabbitmq": "beam.smp", "redis": "redis-server"}


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and all its children."""
    try:
        process = psutil.Process(pid)
        return sum(sum(p.cpu_times()[:2]) for p in [process, *process.children(recursive=True)])
    except psutil.NoSuchProcess:
        return 0.0


def servers_on_this_machine() -> dict[str, int]:
    found = {}
    for process in psutil.process_iter(["name"]):
        for label, name in SERVERS.items():
            if process.info["name"] == name and label not in found:
                found[label] = process.pid
    return found


class CpuPerOrder:
    """CPU time each part of the system spent per order while the block ran."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.us_per_order: dict[str, float] = {}

    def __enter__(self) -> "CpuPerOrder":
        self._before = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._after = {name: cpu_seconds(pid) for name, pid in self.pids.items()}

    def per_order(self, orders: int) -> dict[str, float]:
        spent = {name: self._after[name] - self._before[name] for name in self.pids}
        spent["total"] = sum(spent.values())
        return {name: round(seconds / max(orders, 1) * 1e6) for name, seconds in spent.items()}


def count(database_url: str, query: str) -> int:
    database = database_url.rsplit("/", 1)[1]
    connection = pymysql.connect(host="127.0.0.1", user="root", database=database)
    try:
        with connection.cursor() as cursor:
            cursor.execute(query)
            return int(cursor.fetchone()[0])
    finally:
        connection.close()


PENDING = "SELECT COUNT(*) FROM orders WHERE status = 'PENDING'"
SETTLE_LIMIT_S = 30.0  # every order CONFIRMED or REJECTED within this after the load stops


LOGGED = "SELECT COUNT(*) FROM inbox"  # order-service's inbox: the order.created it has logged
STORED = "SELECT COUNT(*) FROM orders"


def nothing_lost(accounting: dict) -> bool:
    """Every order answered 201 is stored, and only those or ones sent but never answered;
    each stored order applied, logged, decremented and confirmed once; no event left over."""
    created, stored = accounting["responses_201"], accounting["orders_stored"]
    return (
        created <= stored <= created + accounting["sent_unanswered"]
        and stored
        == accounting["order_created_applied_by_product"]
        == accounting["order_created_logged_by_order"]
        == accounting["stock_decrement"]
        == accounting["orders_confirmed"]
        and accounting["outbox_left"] == 0
    )


def sent_unanswered(errors: dict) -> int:
    """Of a run's failures, the requests that were sent (every one but those never sent)."""
    return sum(n for name, n in errors.items() if name != "NotSent")


# The order.created log's queue: order-service has logged an order once it has applied its event.
ORDER_LOG_QUEUE = "order-service.order-created-log"


def flow_counters(stack) -> dict[str, float]:  # noqa: ANN001
    """The order flow as the services count it: orders created, settled, and logged by
    order-service, summed over every process's /metrics (a page that fails counts nothing)."""
    totals = {"created": 0.0, "settled": 0.0, "logged": 0.0}
    for url in stack.services.metrics_urls.values():
        try:
            text = httpx.get(url, timeout=2.0).text
        except httpx.HTTPError:
            continue
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "orders_created_total":
                    totals["created"] += sample.value
                elif sample.name == "orders_settled_total":
                    totals["settled"] += sample.value
                elif (
                    sample.name == "consumer_events_applied_total"
                    and sample.labels.get("queue") == ORDER_LOG_QUEUE
                ):
                    totals["logged"] += sample.value
    return totals


def seconds_to_settle(stack, *, give_up_s: float = 180) -> float:  # noqa: ANN001
    """How long until no order is PENDING any more."""

    def counted() -> bool:
        flow = flow_counters(stack)
        return flow["settled"] >= flow["created"]

    return seconds_until_confirmed(
        counted, lambda: not count(stack.databases["order"], PENDING), give_up_s
    )


def seconds_to_drain(stack, *, give_up_s: float = 180) -> float:  # noqa: ANN001
    """How long until every event of the orders so far is consumed: each order settled, and its
    order.created logged by order-service (that consumer's backlog, which settling does not
    wait for, would load the next measurement)."""
    database = stack.databases["order"]

    def counted() -> bool:
        flow = flow_counters(stack)
        return flow["settled"] >= flow["created"] and flow["logged"] >= flow["created"]

    def stored() -> bool:
        return not count(database, PENDING) and count(database, LOGGED) >= count(database, STORED)

    return seconds_until_confirmed(counted, stored, give_up_s)


def seconds_until_confirmed(
    counted: Callable[[], bool], stored: Callable[[], bool], give_up_s: float
) -> float:
    """Until the services' counters say done and the rows agree. The counters are polled:
    counting rows scans tables of millions of rows, on the database whose drain is being timed
    (2 s a scan of 1.2 million orders, idle), so the rows are counted only to confirm, and
    polled alone only if they disagree with the counters."""
    started = time.monotonic()
    while time.monotonic() - started < give_up_s:
        if counted():
            confirmed_at = time.monotonic()
            if stored():
                return confirmed_at - started
        time.sleep(0.5)
    return time.monotonic() - started


def durability() -> dict:
    connection = pymysql.connect(host="127.0.0.1", user="root")
    with connection.cursor() as cursor:
        cursor.execute("SELECT @@innodb_flush_log_at_trx_commit, @@sync_binlog, @@log_bin")
        flush, sync_binlog, log_bin = cursor.fetchone()
    connection.close()
    return {
        "innodb_flush_log_at_trx_commit": int(flush),
        "sync_binlog": int(sync_binlog),
        "log_bin": int(log_bin),
    }


def _rates(first: int, last: int, step: int) -> str:
    return ",".join(str(rate) for rate in range(first, last + 1, step))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--step-seconds", type=float, default=10)
    parser.add_argument("--sustain-seconds", type=float, default=60)
    parser.add_argument("--low-load-rate", type=int, default=250)
    parser.add_argument("--long-hold-seconds", type=float, default=600, help="0: none")
    parser.add_argument("--long-hold-share", type=float, default=0.4, help="of the ceiling")
    # Steps of 250 orders/s and 500 requests/s: the machine's speed drifts by a factor of two
    # between runs, and coarser steps made the ratio jump (a ceiling of 2000 where 3000 failed).
    parser.add_argument("--order-rates", default=_rates(250, 6000, 250))
    parser.add_argument("--ceiling-rates", default=_rates(1000, 20000, 500))
    parser.add_argument("--read-rates", default=_rates(1000, 8000, 500))
    parser.add_argument(
        "--broker-priority",
        choices=["background", "unchanged"],
        default="background",
        help="RabbitMQ behind the web on the CPU for the run, as infra/ deploys it (default)",
    )
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # cleanups run, priorities go back
    with contextlib.ExitStack() as run:
        broker = servers_on_this_machine().get("rabbitmq")
        if args.broker_priority == "background" and broker:
            priority = run.enter_context(cpu_priority.in_background(broker))
        else:
            priority = "unchanged"
        print(f"RabbitMQ's CPU priority: {priority}", flush=True)
        bench(args, broker_priority=priority)


def bench(args: argparse.Namespace, *, broker_priority: str) -> None:
    from perf import soak  # it measures with this module's parts

    rates = {
        name: [int(r) for r in getattr(args, f"{name}_rates").split(",")]
        for name in ("order", "ceiling", "read")
    }

    figures: dict = {
        "durability": durability(),
        "cores": os.cpu_count(),
        "broker_priority": broker_priority,
    }
    print(f"MariaDB: {figures['durability']}", flush=True)
    ceiling_before = measure_ceiling(
        args.step_seconds / 2, rates["ceiling"], hold_s=args.sustain_seconds
    )

    with real_stack() as stack:
        services, databases = stack.services, stack.databases
        order_request, product_id = soak.order_request(services)
        orders_url = f"{services.order_url}/orders"
        created = 0
        # Sent, but no answer read (cancelled in flight, a connection failing): each may have
        # been stored; a request never sent cannot have been.
        unanswered = 0

        warmup = openloop.run(orders_url, rate=300, seconds=3, **order_request)
        created += warmup.statuses[201]
        unanswered += sent_unanswered(warmup.errors)
        # What a lone order waits, before anything has loaded the databases.
        seconds_to_drain(stack)
        low = openloop.run(orders_url, rate=args.low_load_rate, seconds=30, **order_request)
        created += low.statuses[201]
        unanswered += sent_unanswered(low.errors)
        low_load = {**low.summary(), "passed": passes(low, 201)}
        print(
            f"POST /orders at {args.low_load_rate}/s for 30 s: p50 {low_load['p50_ms']} ms, "
            f"p99 {low_load['p99_ms']} ms",
            flush=True,
        )
        print("POST /orders (step up)", flush=True)
        steps = step_up(
            orders_url,
            rates["order"],
            args.step_seconds,
            201,
            settle=lambda: seconds_to_drain(stack),
            **order_request,
        )
        created += sum(step["statuses"].get(201, 0) for step in steps)
        unanswered += sum(sent_unanswered(step["errors"]) for step in steps)
        masters = [psutil.Process(services.processes[name].pid) for name in ("order", "product")]
        parts = {name: process.pid for name, process in services.processes.items()}
        parts.update(servers_on_this_machine())
        best, sustained, held = None, None, []
        # The highest rate that passed a step, and whose backlog would likely drain in time, is
        # held for the full time; if it does not hold, one at least a tenth lower (three holds at
        # most). Each hold starts once the workers have caught up with what came before (a
        # backlog being drained would load the next hold), and passes only if every order is
        # settled within 30 s after it.
        stretch = args.sustain_seconds / args.step_seconds
        for rate in rates_to_hold(steps, stretch=stretch):
            seconds_to_drain(stack)
            print(f"POST /orders held for {args.sustain_seconds:.0f} s at {rate:.0f}/s", flush=True)
            with RssSampler(masters) as rss, CpuPerOrder(parts) as cpu:
                result = openloop.run(
                    orders_url, rate=rate, seconds=args.sustain_seconds, **order_request
                )
            created += result.statuses[201]
            unanswered += sent_unanswered(result.errors)
            settled_s = seconds_to_settle(stack)
            sustained = {
                **result.summary(),
                "settled_within_s": round(settled_s, 1),
                "passed": passes(result, 201) and settled_s <= SETTLE_LIMIT_S,
                "web_rss_peak_mb": rss.peak_mb,
                "cpu_us_per_order": cpu.per_order(result.statuses[201]),
            }
            held.append(sustained)
            print(
                f"  p50 {sustained['p50_ms']} ms  p99 {sustained['p99_ms']} ms  "
                f"failed {result.failed(201)}  settled within {settled_s:.1f} s  "
                f"{'ok' if sustained['passed'] else 'FAIL'}",
                flush=True,
            )
            if sustained["passed"]:
                best = int(rate)
                break
        long_hold = None
        ceiling_rps = ceiling_before["held_rps"] or ceiling_before["best_rps"]
        if args.long_hold_seconds and ceiling_rps:
            rate = round(ceiling_rps * args.long_hold_share / 50) * 50
            print(
                f"POST /orders held for {args.long_hold_seconds / 60:g} min at {rate}/s "
                f"({args.long_hold_share} × the ceiling before)",
                flush=True,
            )
            long_hold = soak.hold(
                stack, orders_url, order_request, rate=rate, seconds=args.long_hold_seconds
            )
            created += long_hold["statuses"].get(201, 0)
            unanswered += sent_unanswered(long_hold["errors"])
            long_hold["settled_within_s"] = round(seconds_to_settle(stack), 1)
            long_hold["passed"] = (
                long_hold["passed"]
                and bool(long_hold["drift"]["within_limit"])
                and long_hold["settled_within_s"] <= SETTLE_LIMIT_S
            )
            soak.print_minutes(long_hold)
        settled_after = (
            sustained["settled_within_s"] if sustained else round(seconds_to_settle(stack), 1)
        )
        seconds_to_drain(stack)
        stored = count(databases["order"], STORED)
        accounting = {
            "responses_201": created,
            "sent_unanswered": unanswered,
            "orders_stored": stored,
            "orders_confirmed": count(
                databases["order"], "SELECT COUNT(*) FROM orders WHERE status='CONFIRMED'"
            ),
            "orders_pending": count(databases["order"], PENDING),
            "order_created_applied_by_product": count(
                databases["product"], "SELECT COUNT(*) FROM inbox"
            ),
            "order_created_logged_by_order": count(databases["order"], LOGGED),
            "stock_decrement": soak.STOCK
            - count(databases["product"], f"SELECT qty FROM products WHERE id={product_id}"),
            "outbox_left": count(databases["order"], "SELECT COUNT(*) FROM outbox")
            + count(databases["product"], "SELECT COUNT(*) FROM outbox"),
            "settled_within_s": settled_after,
        }
        accounting["nothing_lost"] = nothing_lost(accounting)

        # Measured once the workers have drained (above), so that they do not share the CPU.
        print("GET /products/{id} from the cache (step up)", flush=True)
        reads = step_up(
            f"{services.product_url}/products/{product_id}",
            rates["read"],
            args.step_seconds / 2,
            200,
        )

    # Measured again once the stack is gone: a slow spell during one search alone would
    # understate the ceiling and so overstate the ratio, which takes the higher of the two.
    ceiling_after = measure_ceiling(args.step_seconds / 2, rates["ceiling"])
    figures.update(
        ceiling={
            "before": ceiling_before,
            "after": ceiling_after,
            # Held for 60 s, as the orders' rate is; without holds, the higher best step.
            "best_rps": ceiling_before["held_rps"]
            if args.sustain_seconds
            else max(ceiling_before["best_rps"] or 0, ceiling_after["best_rps"] or 0),
            "cpu_us_per_request": ceiling_before["cpu_us_per_request"],
        },
        orders={
            "low_load": low_load,
            "steps": steps,
            "best_rps": best,
            "sustained": sustained,
            "holds": held,
            "long_hold": long_hold,
        },
        reads={"steps": reads, "best_rps": best_rate(reads)},
        accounting=accounting,
    )
    ceiling = figures["ceiling"]["best_rps"]
    figures["ratio_orders_to_ceiling"] = round(best / ceiling, 2) if best and ceiling else None
    figures["void"] = not ceiling_before["held_rps"]
    if long_hold and ceiling:
        figures["ratio_long_hold_to_ceiling"] = round(long_hold["offered_rps"] / ceiling, 2)
    print_table(figures)
    REPORTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = REPORTS / f"bench-{stamp}.json"
    path.write_text(json.dumps(figures, indent=2))
    chart.draw(figures, path.with_suffix(".png"))
    if long_hold:
        chart.draw_hold(
            long_hold,
            path.with_name(f"{path.stem}-long-hold.png"),
            title=f"POST /orders held {long_hold['seconds'] / 60:g} min",
        )
    print(f"figures written to {path.relative_to(ROOT)} and drawn in {path.stem}*.png")


def _long_hold_rows(long: dict, ratio: float | None) -> list[tuple[str, str]]:
    if not long:  # --long-hold-seconds 0
        return [("POST /orders held 10 min", "not run")]
    drift = long.get("drift", {})
    return [
        (
            f"POST /orders held {long.get('seconds', 0) / 60:g} min at {long.get('offered_rps')}/s",
            f"{'held' if long.get('passed') else 'NOT held'}: p50 {long.get('p50_ms')} ms, p99 "
            f"{long.get('p99_ms')} ms, ratio {ratio}",
        ),
        (
            "  drift, last minute / first: p99, PENDING",
            f"{drift.get('p99_drift')}, {drift.get('first_minute_pending_max')} → "
            f"{drift.get('last_minute_pending_max')}"
            f" ({'within' if drift.get('within_limit') else 'OVER'} the limit)",
        ),
        (
            "  CPU per order (µs) over the long hold",
            ", ".join(f"{k} {v}" for k, v in long.get("cpu_us_per_order", {}).items()),
        ),
    ]


def print_table(figures: dict) -> None:
    sustained = figures["orders"]["sustained"] or {}
    held_s = sustained.get("seconds", 0)
    acc = figures["accounting"]
    rss = sustained.get("web_rss_peak_mb", {})
    ceiling = figures["ceiling"]
    low = figures["orders"]["low_load"] or {}
    long = figures["orders"]["long_hold"] or {}
    rows = [
        (
            "ceiling: bare Flask endpoint held, p99 <= 50 ms",
            f"{ceiling['best_rps']} req/s (best steps: before the orders"
            f" {ceiling['before']['best_rps']}, after {ceiling['after']['best_rps']})",
        ),
        (
            "  its CPU per request at 2000/s (machine speed)",
            f"{ceiling['cpu_us_per_request']} µs",
        ),
        ("  a rate held 60 s (else the run is void)", "no: VOID" if figures["void"] else "yes"),
        (
            f"POST /orders at {low.get('offered_rps')}/s: p50 / p99",
            f"{low.get('p50_ms')} / {low.get('p99_ms')} ms",
        ),
        (
            f"POST /orders held {held_s:.0f} s, p99 <= 50 ms, 0 errors",
            f"{figures['orders']['best_rps']} req/s" if sustained.get("passed") else "none",
        ),
        (
            "  p50 / p95 / p99 / max",
            " / ".join(str(sustained.get(k)) for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms"))
            + " ms",
        ),
        ("  load generator CPU", f"{sustained.get('generator_cpu', 0):.0%} of a core"),
        (
            f"  CPU per order (µs), during the {held_s:.0f} s",
            ", ".join(f"{k} {v}" for k, v in sustained.get("cpu_us_per_order", {}).items()),
        ),
        ("ratio orders / ceiling", f"{figures['ratio_orders_to_ceiling'] or '-'}"),
    ]
    rows += _long_hold_rows(long, figures.get("ratio_long_hold_to_ceiling"))
    rows += [
        ("GET /products/{id} (cache hit), p99 <= 50 ms", f"{figures['reads']['best_rps']} req/s"),
        (
            "201s returned / orders stored / sent, never answered",
            f"{acc['responses_201']} / {acc['orders_stored']} / {acc.get('sent_unanswered')}",
        ),
        (
            "order.created applied / logged / stock decrement",
            f"{acc['order_created_applied_by_product']} / {acc['order_created_logged_by_order']}"
            f" / {acc['stock_decrement']}",
        ),
        (
            "confirmed / pending / outbox rows left",
            f"{acc['orders_confirmed']} / {acc['orders_pending']} / {acc['outbox_left']}",
        ),
        ("every order settled after the load within", f"{acc['settled_within_s']} s"),
        ("web worker RSS peak", f"{max(rss.values(), default=0):.0f} MB"),
        (
            "MariaDB innodb_flush_log_at_trx_commit",
            f"{figures['durability']['innodb_flush_log_at_trx_commit']}",
        ),
        ("RabbitMQ's CPU priority", figures["broker_priority"]),
    ]
    width = max(len(name) for name, _ in rows)
    print()
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print(f"{'nothing lost':<{width}}  {acc['nothing_lost']}")


if __name__ == "__main__":
    main()
