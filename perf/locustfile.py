"""Locust scenarios against a running stack (`make run`, or the compose stack).

    make locust SCENARIO=seed-1000     # (a) the seeds' run: POST /orders, ramp to 1000/s, hold
    make locust SCENARIO=seed-2000     # (b) the same at 2000/s
    make locust SCENARIO=reads         # (c) GET /products/{id}, served from the cache
    make locust SCENARIO=mixed         # (d) create product, read it, order, list orders, BFF

Each headless run writes Locust's CSV files and HTML report to perf/reports/ (ignored by git).
(a) and (b) fail (exit code 1) unless failures < 1 % and p95 < 300 ms, the seeds' thresholds.
Arrival rates come from many users each keeping a constant throughput; the open-loop harness
`make bench` is the stricter measurement. Set PRODUCT_URL / ORDER_URL for other hosts, and
TOKEN to a bearer token with every scope (`make locust` takes one from `make token`).

One Locust process takes most of a core at 1000 requests/s: past that the generator, not the
stack, is measured. Spread it over processes or hosts (docs/scaling.md):

    make locust LOCUST_PROCESSES=4     # one master, four worker processes on this host
    docker compose -f infra/docker-compose.yml --profile loadtest up --scale locust-worker=4
"""

import json
import os
import random
import urllib.request

from locust import FastHttpUser, HttpUser, LoadTestShape, constant_throughput, events, task
from locust.runners import WorkerRunner

PRODUCT_URL = os.environ.get("PRODUCT_URL", "http://127.0.0.1:3000").rstrip("/")
ORDER_URL = os.environ.get("ORDER_URL", "http://127.0.0.1:4000").rstrip("/")
SCENARIO = os.environ.get("SCENARIO", "mixed")
AUTHORIZATION = (
    {"Authorization": f"Bearer {os.environ['TOKEN']}"} if os.environ.get("TOKEN") else {}
)
PER_USER_RPS = 5  # each user sends at most this many requests per second
RATES = {"seed-1000": 1000, "seed-2000": 2000, "reads": 1000}
RAMP_S, HOLD_S = 30, 30
_product: dict = {}


@events.test_start.add_listener
def create_stock(environment, **_kwargs) -> None:
    """One product with stock for the whole run, made by each process that runs users (each
    run brings its own). The standard library only: Locust's own image runs this file too."""
    request = urllib.request.Request(
        f"{PRODUCT_URL}/products",
        data=json.dumps({"name": "Locust stock", "price": 10, "qty": 10**9}).encode(),
        headers={"Content-Type": "application/json", **AUTHORIZATION},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        _product.update(json.load(response))


@events.quitting.add_listener
def check_thresholds(environment, **_kwargs) -> None:
    if SCENARIO not in ("seed-1000", "seed-2000") or isinstance(environment.runner, WorkerRunner):
        return  # distributed, the master judges the whole run
    total = environment.stats.total
    p95 = total.get_response_time_percentile(0.95)
    if total.fail_ratio >= 0.01 or p95 >= 300:
        print(f"thresholds missed: failures {total.fail_ratio:.2%} (< 1%), p95 {p95} ms (< 300)")
        environment.process_exit_code = 1
    else:
        print(f"thresholds met: failures {total.fail_ratio:.2%}, p95 {p95} ms")


class OrderPlacer(FastHttpUser):
    """(a), (b): POST /orders of one unit each (FastHttpUser: a fraction of HttpUser's CPU,
    which matters with the generator on the same 2 cores as the stack)."""

    host = ORDER_URL
    wait_time = constant_throughput(PER_USER_RPS)
    weight = 1 if SCENARIO.startswith("seed") else 0

    @task
    def place_order(self) -> None:
        self.client.post(
            "/orders",
            json={"productId": _product["id"], "qty": 1},
            name="POST /orders",
            headers=AUTHORIZATION,
        )


class ProductReader(FastHttpUser):
    """(c): the same product again and again, as the cache serves it."""

    host = PRODUCT_URL
    wait_time = constant_throughput(PER_USER_RPS)
    weight = 1 if SCENARIO == "reads" else 0

    @task
    def read_product(self) -> None:
        self.client.get(f"/products/{_product['id']}", name="GET /products/{id}")


class Shopper(HttpUser):
    """(d): a whole session over both services."""

    host = PRODUCT_URL
    wait_time = constant_throughput(1)
    weight = 1 if SCENARIO == "mixed" else 0

    @task
    def session(self) -> None:
        created = self.client.post(
            "/products",
            json={"name": f"Item {random.randrange(10**6)}", "price": 19.99, "qty": 100},
            name="POST /products",
            headers=AUTHORIZATION,
        ).json()
        self.client.get(f"/products/{created['id']}", name="GET /products/{id}")
        self.client.post(
            f"{ORDER_URL}/orders",
            json={"productId": created["id"], "qty": 2},
            name="POST /orders",
            headers=AUTHORIZATION,
        )
        self.client.get(
            f"{ORDER_URL}/orders/product/{created['id']}",
            name="GET /orders/product/{id}",
            headers=AUTHORIZATION,
        )
        self.client.get(
            f"/products/{created['id']}/with-orders",
            name="GET /products/{id}/with-orders",
            headers=AUTHORIZATION,
        )


if SCENARIO in RATES:

    class RampThenHold(LoadTestShape):
        """Users (each at PER_USER_RPS) ramped up over RAMP_S to the scenario's rate, held for
        HOLD_S, then stop. Overridden in smoke runs by LOCUST_SHAPE_SCALE (e.g. 0.01)."""

        scale = float(os.environ.get("LOCUST_SHAPE_SCALE", "1"))

        def tick(self):
            elapsed = self.get_run_time()
            ramp, hold = RAMP_S * self.scale, HOLD_S * self.scale
            users = max(1, int(RATES[SCENARIO] * self.scale / PER_USER_RPS))
            if elapsed < ramp:
                return max(1, int(users * elapsed / ramp)), max(1, users // 5)
            if elapsed < ramp + hold:
                return users, users
            return None
