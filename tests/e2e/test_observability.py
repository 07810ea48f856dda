"""What an operator sees of the running system (both web services and both workers as real
processes, on the embedded defaults and on the real MariaDB, Redis and RabbitMQ): each
process's /metrics moved by exactly what the seed's flow did, one caller's trace id in the JSON
log lines of every process that did that order's work, the spans of that order exported over
OTLP as one chain, and a real Prometheus scraping every process with infra/'s jobs and
answering the dashboard's queries."""

import http.server
import json
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from prometheus_client.parser import text_string_to_metric_families

from devstack.processes import free_port, running_stack
from tests.conftest import infra_required

ROOT = Path(__file__).resolve().parents[2]
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN_ID = "b7ad6b7169203331"
TRACEPARENT = f"00-{TRACE_ID}-{CALLER_SPAN_ID}-01"
Samples = dict[tuple[str, frozenset], float]


def scrape(url: str) -> Samples:
    response = httpx.get(url, timeout=5)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, metric: str, **labels: str) -> float:
    return samples.get((metric, frozenset(labels.items())), 0.0)


def eventually(probe: Callable[[], Any], within_s: float = 20) -> Any:
    deadline = time.monotonic() + within_s
    while not (result := probe()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return result


def quiet(stack: Any) -> dict[str, Samples]:
    """Every process's metrics once both outboxes are empty (a shared database may hold what
    an earlier test left, which the workers publish as they start)."""

    def drained() -> dict[str, Samples] | None:
        now = {name: scrape(url) for name, url in stack.metrics_urls.items()}
        workers = (now["product-worker"], now["order-worker"])
        empty = all(("outbox_backlog_rows", frozenset()) in s for s in workers) and not any(
            value(s, "outbox_backlog_rows") for s in workers
        )
        return now if empty else None

    samples = eventually(drained)
    assert samples, "the outboxes did not drain"
    time.sleep(1.5)  # what was just relayed is applied too
    return {name: scrape(url) for name, url in stack.metrics_urls.items()}


def seed_flow(stack: Any) -> tuple[dict, dict, int]:
    """The seed's flow, the order sent with a caller's trace context; (product, order, how
    many times the order was read until CONFIRMED)."""
    with stack.client("product") as products, stack.client("order") as orders:
        created = products.post("/products", json={"name": "Laptop", "price": 1500, "qty": 50})
        assert created.status_code == 201, created.text
        product = created.json()
        assert products.get(f"/products/{product['id']}").status_code == 200
        placed = orders.post(
            "/orders",
            json={"productId": product["id"], "qty": 2},
            headers={"traceparent": TRACEPARENT},
        )
        assert placed.status_code == 201, placed.text
        order, reads = placed.json(), 0

        def confirmed() -> bool:
            nonlocal reads
            reads += 1
            return orders.get(f"/orders/{order['id']}").json()["status"] == "CONFIRMED"

        assert eventually(confirmed), "the order was not confirmed"
    return product, order, reads


@pytest.fixture
def json_log_stack(service_env, tmp_path):
    env = {**service_env, "LOG_FORMAT": "json", "LOG_LEVEL": "DEBUG"}
    with running_stack(env, tmp_path) as stack:
        yield stack


def test_metrics_count_exactly_what_was_done(json_log_stack):
    stack = json_log_stack
    before = quiet(stack)
    _, _, order_reads = seed_flow(stack)
    time.sleep(1.5)  # the order-created log consumer runs beside the settling one
    after = {name: scrape(url) for name, url in stack.metrics_urls.items()}

    def moved(process: str, metric: str, **labels: str) -> float:
        return value(after[process], metric, **labels) - value(before[process], metric, **labels)

    requests = "http_server_requests_total"
    assert moved("product", requests, operation="create_product", status="201") == 1
    # The test's read, and order-service's if it asked (a miss of what it knows of products).
    asked = moved("order", "cache_lookups_total", cache="product-knowledge", result="miss")
    assert moved("product", requests, operation="get_product", status="200") == 1 + asked
    assert moved("product", "cache_lookups_total", cache="product", result="hit") == 1 + asked
    # POST /orders and GET /orders/{id}: the fast path's operations, measured by the edge too.
    assert moved("order", requests, operation="create_order", status="201") == 1
    assert moved("order", "http_server_request_duration_seconds_count", operation="create_order")
    assert moved("order", requests, operation="get_order", status="200") == order_reads
    assert moved("order", "orders_created_total") == 1
    assert moved("order", "group_commit_batch_size_count", name="orders") == 1
    knowledge = ("fresh", "stale", "shared", "miss")
    assert (
        sum(
            moved("order", "cache_lookups_total", cache="product-knowledge", result=result)
            for result in knowledge
        )
        == 1
    )
    relayed = "outbox_events_relayed_total"
    assert moved("product-worker", relayed, type="product.created") == 1
    assert moved("product-worker", relayed, type="stock.reserved") == 1
    assert moved("product-worker", "stock_reservations_total", outcome="reserved") == 1
    assert moved("product-worker", "stock_reservations_total", outcome="rejected") == 0
    applied = "consumer_events_applied_total"
    assert moved("product-worker", applied, queue="product-service.order-created") == 1
    assert moved("order-worker", relayed, type="order.created") == 1
    for queue in ("product-changes", "order-created-log", "stock-results"):
        assert moved("order-worker", applied, queue=f"order-service.{queue}") == 1
    assert moved("order-worker", "orders_settled_total", status="CONFIRMED") == 1
    for worker in ("product-worker", "order-worker"):
        assert value(after[worker], "outbox_backlog_rows") == 0
        assert value(after[worker], "outbox_oldest_event_age_seconds") == 0


def test_a_metrics_port_serves_every_web_workers_metrics_and_the_api_port_none(
    service_env, tmp_path
):
    """<S>_METRICS_PORT, as Kubernetes sets it: gunicorn's master serves the metrics its
    workers write (requests they served included), and /metrics on the API port is a 404."""
    with running_stack(service_env, tmp_path, metrics_ports=True) as stack:
        for service in ("product", "order"):
            api_port = getattr(stack, f"{service}_url").rsplit(":", 1)[1]
            assert f":{api_port}/" not in stack.metrics_urls[service]
        before = {service: scrape(stack.metrics_urls[service]) for service in ("product", "order")}
        health_checks = 8  # each on a connection of its own: the kernel spreads them over workers
        for _ in range(health_checks):
            assert httpx.get(f"{stack.order_url}/health", timeout=5).status_code == 200
        product, order, reads = seed_flow(stack)
        after = {service: scrape(stack.metrics_urls[service]) for service in ("product", "order")}

        def moved(service: str, metric: str, **labels: str) -> float:
            return value(after[service], metric, **labels) - value(
                before[service], metric, **labels
            )

        requests = "http_server_requests_total"
        assert moved("order", requests, operation="health", status="200") == health_checks
        assert moved("order", requests, operation="create_order", status="201") == 1
        assert moved("order", requests, operation="get_order", status="200") == reads
        assert moved("order", "orders_created_total") == 1
        assert moved("product", requests, operation="create_product", status="201") >= 1
        for service in ("product", "order"):
            url = getattr(stack, f"{service}_url")
            answer = httpx.get(f"{url}/metrics", headers={"X-Request-ID": "m-1"}, timeout=5)
            assert answer.status_code == 404, answer.text
            assert answer.headers["content-type"].startswith("application/problem+json")
            problem = answer.json()
            assert problem["status"] == 404 and problem["requestId"] == "m-1"
            # and that refusal is counted, where the scraper reads
            refused = scrape(stack.metrics_urls[service])
            assert value(refused, requests, operation="metrics", status="404") == 1, service


def _json_lines(log: str) -> list[dict]:
    lines = []
    for line in log.splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def test_a_callers_trace_id_is_in_the_json_logs_of_every_process_of_its_order(json_log_stack):
    stack = json_log_stack
    _, order, _ = seed_flow(stack)
    time.sleep(1.5)
    for process in ("order", "order-worker", "product-worker"):
        lines = _json_lines(stack.log_of(process))
        assert lines, f"{process} wrote no JSON log line"
        for line in lines:
            assert {"time", "level", "logger", "message", "request_id"} <= set(line), line
        traced = [line for line in lines if line.get("trace_id") == TRACE_ID]
        assert traced, f"{process}: no log line with the caller's trace id"
        if process != "order":  # applying the order's event: its id is on the line
            about_the_order = [
                line
                for line in traced
                if f"order {order['id']}:" in line["message"]
                or f"order={order['id']} " in line["message"]
            ]
            assert about_the_order and all(line.get("event_id") for line in about_the_order)
    access = [
        line
        for line in _json_lines(stack.log_of("order"))
        if line["logger"] == "gunicorn.access" and "POST /orders" in line["message"]
    ]
    assert [line.get("trace_id") for line in access] == [TRACE_ID]


class _Collector(http.server.BaseHTTPRequestHandler):
    """An OTLP/HTTP receiver keeping every span it is sent, in memory."""

    spans: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        request = ExportTraceServiceRequest()
        request.ParseFromString(self.rfile.read(int(self.headers["Content-Length"])))
        for resource_spans in request.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope in resource_spans.scope_spans:
                for span in scope.spans:
                    self.spans.append(
                        {
                            "service": attributes.get("service.name"),
                            "name": span.name,
                            "trace": span.trace_id.hex(),
                            "id": span.span_id.hex(),
                            "parent": span.parent_span_id.hex(),
                        }
                    )
        body = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[tuple[str, list[dict]]]:
    spans: list[dict] = []
    handler = type("Collector", (_Collector,), {"spans": spans})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", spans
    finally:
        server.shutdown()


def test_one_orders_spans_are_exported_as_one_chain(service_env, tmp_path, collector):
    endpoint, spans = collector
    env = {
        **service_env,
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "200",  # milliseconds between exports
        "OTEL_TRACES_SAMPLER": "parentbased_always_on",
    }
    with running_stack(env, tmp_path) as stack:
        seed_flow(stack)

        def chain() -> dict[tuple[str, str], dict] | None:
            ours = {(s["service"], s["name"]): s for s in spans if s["trace"] == TRACE_ID}
            return ours if ("order-service", "process stock.reserved") in ours else None

        found = eventually(chain)
    assert found, f"incomplete: {sorted({(s['service'], s['name']) for s in spans})}"
    request = found[("order-service", "POST create_order")]
    assert request["parent"] == CALLER_SPAN_ID
    assert found[("order-service", "group commit orders")]["parent"] == request["id"]
    assert found[("order-service", "publish order.created")]["parent"] == request["id"]
    reservation = found[("product-service", "process order.created")]
    assert reservation["parent"] == request["id"]
    assert found[("product-service", "publish stock.reserved")]["parent"] == reservation["id"]
    assert found[("order-service", "process stock.reserved")]["parent"] == reservation["id"]
    assert found[("order-service", "process order.created")]["parent"] == request["id"]


PROMETHEUS = shutil.which("prometheus")
DASHBOARD = ROOT / "infra/grafana/dashboards/order-product.json"


@pytest.fixture
def prometheus_binary() -> str:
    if PROMETHEUS is None:
        message = "prometheus is not installed (make test installs Debian's)"
        if infra_required():
            pytest.fail(message + " (REQUIRE_INFRA=1)")
        pytest.skip(message)
    return PROMETHEUS


# As `make run` starts them: on the embedded defaults.
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_prometheus_scrapes_every_process_with_infras_jobs(
    prometheus_binary, service_env, tmp_path
):
    # The web services' metrics on ports of their own, as infra/ serves and scrapes them.
    with running_stack(service_env, tmp_path, metrics_ports=True) as stack:
        config = yaml.safe_load((ROOT / "infra/prometheus/prometheus.yml").read_text())
        config["global"]["scrape_interval"] = "1s"
        for job in config["scrape_configs"]:  # infra's jobs, at this stack's addresses
            process = job["job_name"].removesuffix("-service")
            address = stack.metrics_urls[process].removeprefix("http://").split("/")[0]
            job["static_configs"] = [{"targets": [address]}]
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
        port = free_port()
        prometheus = subprocess.Popen(
            [
                prometheus_binary,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=(tmp_path / "prometheus.log").open("w"),
            stderr=subprocess.STDOUT,
        )
        api = f"http://127.0.0.1:{port}/api/v1"

        def query(expression: str) -> list[dict]:
            try:
                answer = httpx.get(f"{api}/query", params={"query": expression}, timeout=5)
            except httpx.HTTPError:
                return []
            if answer.status_code == 503:  # still starting
                return []
            assert answer.status_code == 200, answer.text
            return answer.json()["data"]["result"]

        try:
            up = eventually(lambda: len(query("up == 1")) == 4 and query("up == 1"), 30)
            assert {r["metric"]["job"] for r in up} == {
                j["job_name"] for j in config["scrape_configs"]
            }
            for _ in range(3):
                seed_flow(stack)
            rate = 'sum(rate(http_server_requests_total{operation="create_order"}[30s]))'
            answered = eventually(lambda: (r := query(rate)) and float(r[0]["value"][1]) > 0, 30)
            assert answered, (tmp_path / "prometheus.log").read_text()[-2000:]
            # Every query of the dashboard is one Prometheus takes, over series that exist.
            dashboard = json.loads(DASHBOARD.read_text())
            for panel in dashboard["panels"]:
                for target in panel["targets"]:
                    answer = httpx.get(f"{api}/query", params={"query": target["expr"]})
                    assert answer.json()["status"] == "success", (target["expr"], answer.text)
                    names = {
                        name
                        for name in _metric_names(target["expr"])
                        if not query(f'count({{__name__="{name}"}})')
                    }
                    assert not names, f"{panel['title']}: no series of {names}"
        finally:
            prometheus.terminate()
            prometheus.wait(timeout=10)


def _metric_names(expression: str) -> set[str]:
    """The metric names an expression reads: its words, less quoted text, PromQL's functions
    and keywords, and label names."""
    unquoted = re.sub(r'"[^"]*"', "", expression)
    labels = set(re.findall(r"\b(\w+)\s*(?:=~|!~|!=|=)", unquoted))
    grouped = {w.strip() for g in re.findall(r"by \(([^)]*)\)", unquoted) for w in g.split(",")}
    words = set(re.findall(r"\b[a-z_][a-z0-9_]*\b", unquoted))
    return words - PROMQL_WORDS - labels - grouped


PROMQL_WORDS = {"sum", "rate", "increase", "histogram_quantile", "by", "count", "s", "m"}
