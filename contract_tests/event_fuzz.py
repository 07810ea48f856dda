"""The event fuzzer, Schemathesis' counterpart for asyncapi/events.yaml: from each receive
operation's message schema, Hypothesis (hypothesis-jsonschema) generates valid events, and the
fuzzer mutates them into invalid ones (wrong types, missing fields, unknown types, packs mixing
types, huge strings, bad trace context, not JSON at all) and adds duplicates and out-of-order
product versions. Everything goes through the real RabbitMQ to the real consumers (the services'
own handlers, on MariaDB and Redis), and then the properties are checked:

- no consumer crashes or stops consuming (each applies a last event sent after all the others);
- every invalid message is dead-lettered once, with its reason (x-poison-reason), and its
  events change nothing (no inbox row, no stock outcome);
- every valid event is applied exactly once (one inbox row; one stock outcome per order), also
  when delivered twice; product knowledge never goes back to an older version;
- stock never goes negative, and what was reserved is what the stock lost.

    python -m contract_tests.event_fuzz --examples 300 [--seed N]   (make contract-events)

tests/integration/test_event_fuzz.py runs a short pass with a fixed seed in make test."""

import argparse
import collections
import copy
import dataclasses
import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import hypothesis
import hypothesis.strategies as st
import pika
from hypothesis_jsonschema import from_schema
from sqlalchemy import bindparam, text

from service_kit import exact_json
from service_kit.messaging import events
from service_kit.messaging.amqp import declare_topology
from service_kit.messaging.consumer import consume

POISON_REASON = "x-poison-reason"
HUGE = 1_000_000  # characters of a huge string


@dataclasses.dataclass
class Case:
    """One message to deliver and what must come of it."""

    kind: str  # "valid", "duplicate", "out-of-order", or the mutation that makes it invalid
    routing_key: str
    body: bytes
    valid_events: list[dict[str, Any]]  # the valid events it carries, to be applied once
    invalid_events: list[dict[str, Any]]  # the events it carries that must change nothing
    dead: bool  # must be dead-lettered with a reason
    queue: str = ""  # sent straight to this queue (default exchange), not to the events exchange

    def targets(self) -> list[str]:
        """The queues it reaches."""
        return [self.queue] if self.queue else events.queues_for(self.routing_key)


@dataclasses.dataclass
class Report:
    seed: int
    generated: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    dead_lettered: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    applied: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    kinds: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    failures: list[str] = dataclasses.field(default_factory=list)
    seconds: float = 0.0

    def lines(self) -> list[str]:
        return [
            f"event fuzz, seed {self.seed}, {self.seconds:.1f} s",
            f"  generated per type: {dict(sorted(self.generated.items()))}",
            f"  messages per kind:  {dict(sorted(self.kinds.items()))}",
            f"  applied per type:   {dict(sorted(self.applied.items()))}",
            f"  dead-lettered per queue: {dict(sorted(self.dead_lettered.items()))}",
            f"  failures: {len(self.failures)}",
            *(f"    {failure}" for failure in self.failures[:20]),
        ]


# The consumers of each queue: the handler its service's worker runs (product_service/worker.py,
# order_service/worker.py), by the service's use case.
HANDLERS = {
    "product-service.order-created": ("product", "reserve_stock"),
    "order-service.order-created-log": ("order", "log_orders_created"),
    "order-service.stock-results": ("order", "settle_orders"),
    "order-service.product-changes": ("order", "note_product_changes"),
}


def inlined(schema: Any) -> Any:
    """The schema with every local reference into the contract replaced by what it names."""
    if isinstance(schema, dict):
        if "$ref" in schema:
            return inlined(events._resolved({"$ref": schema["$ref"]}))
        return {key: inlined(value) for key, value in schema.items()}
    if isinstance(schema, list):
        return [inlined(value) for value in schema]
    return schema


def generated(event_type: str, count: int, seed: int) -> list[dict[str, Any]]:
    """`count` events of the type valid by its message's schema, from Hypothesis with `seed`."""
    schema = inlined(events.messages()[event_type]["payload"]["oneOf"][0])
    strategy = from_schema(
        schema, custom_formats={"uuid": st.uuids().map(str)}, allow_x00=False
    ).filter(lambda event: all(isinstance(v, str) for v in _strings(event)))
    found: list[dict[str, Any]] = []

    @hypothesis.seed(seed)
    @hypothesis.settings(
        max_examples=count,
        database=None,
        deadline=None,
        phases=[hypothesis.Phase.generate],
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    @hypothesis.given(strategy)
    def collect(event: dict[str, Any]) -> None:
        found.append(event)

    collect()
    return found[:count]


def _strings(value: Any) -> Iterator[Any]:
    """Every string in a JSON value (keys too): surrogates cannot be encoded in UTF-8."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:
            yield None
        else:
            yield value


class Ids:
    """Fresh ids for what the fuzzer's events name, apart from anything else in the databases."""

    def __init__(self, rng: random.Random) -> None:
        self._next = 10**12 + rng.randrange(10**12)

    def __call__(self) -> int:
        self._next += 1
        return self._next


def body_of(value: Any) -> bytes:
    return exact_json.dumps(value).encode()


def cases_for(
    event_type: str, count: int, seed: int, products: list[int], report: Report
) -> list[Case]:
    """Valid events of the type, made to name fresh ids (and, for orders, real products too),
    each followed by mutations of it."""
    rng = random.Random(f"{seed}:{event_type}")
    ids = Ids(rng)
    cases: list[Case] = []

    def add(kind: str, body: bytes, valid: list, invalid: list, dead: bool, key: str = "") -> None:
        cases.append(Case(kind, key or event_type, body, valid, invalid, dead))

    for index, event in enumerate(generated(event_type, count, seed + index_of(event_type))):
        report.generated[event_type] += 1
        event["id"] = str(events.time_ordered_uuid())
        data = event["data"]
        if "productId" in data:
            data["productId"] = rng.choice(products) if rng.random() < 0.7 else ids()
            if event_type == "order.created" and data["productId"] in products:
                data["qty"] = rng.randint(1, 12)  # a stock of 20 runs out: some are rejected
        for key in ("id", "orderId"):
            if key in data and not event_type.startswith("product."):
                data[key] = ids()
        if event_type.startswith("product."):
            data["id"] = ids()
        add("valid", body_of(event), [event], [], False)
        mutation = MUTATIONS[index % len(MUTATIONS)]
        # Under ids of its own (given before the mutation, which may break them): nothing of
        # it may be applied under any id.
        broken = mutation(renamed(event, ids), rng)
        add(mutation.__name__, body_of(broken), [], [broken], True)
        if index % 3 == 0:  # delivered again: applied once
            add("duplicate", body_of(event), [event], [], False)
        if index % 4 == 1:  # a pack with an event of another type: dead, its valid one applied
            twin = renamed(event, ids)
            other = renamed(event, ids)
            other["type"] = "stock.reserved" if event_type != "stock.reserved" else "order.created"
            add("pack-mixing-types", body_of([twin, other]), [twin], [other], True)
    # Product knowledge never goes back: version 5, then a late version 3, then the same 5.
    if event_type == "product.updated" and cases:
        (event,) = cases[0].valid_events
        product_id = ids()
        newest = copy.deepcopy(event) | {"id": str(events.time_ordered_uuid())}
        newest["data"] = newest["data"] | {"id": product_id, "version": 5}
        late = copy.deepcopy(newest) | {"id": str(events.time_ordered_uuid())}
        late["data"] = late["data"] | {"version": 3, "qty": 1}
        add("out-of-order", body_of(newest), [newest], [], False)
        add("out-of-order", body_of(late), [late], [], False)
    return cases


def renamed(event: dict[str, Any], ids: Ids) -> dict[str, Any]:
    """A copy of the event under a new event id, naming a new order (or product)."""
    copied = copy.deepcopy(event) | {"id": str(events.time_ordered_uuid())}
    key = "orderId" if "orderId" in copied["data"] else "id"
    copied["data"][key] = ids()
    return copied


def index_of(event_type: str) -> int:
    return events.event_types().index(event_type) * 1000


def wrong_type(event: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    field = rng.choice(sorted(event["data"]))
    event["data"][field] = "x" if not isinstance(event["data"][field], str) else 7
    return event


def missing_field(event: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    if rng.random() < 0.5:
        del event[rng.choice(["occurredAt", "requestId", "data"])]
    else:  # a required one: an optional one missing (a product's version) is still valid
        del event["data"][rng.choice(required_data(event["type"]))]
    return event


def required_data(event_type: str) -> list[str]:
    """The fields the `data` of an event of the type must have."""
    schema = inlined(events.messages()[event_type]["payload"]["oneOf"][0])
    (data,) = [
        part["properties"]["data"]
        for part in schema["allOf"]
        if "data" in part.get("properties", {}) and "required" in part["properties"]["data"]
    ]
    return sorted(data["required"])


def unknown_field(event: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    event["data"]["x" * rng.randrange(1, 64)] = 1
    return event


def unknown_type(event: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    event["type"] = rng.choice(["order.cancelled", "product.renamed", "", "ORDER.CREATED"])
    return event


def huge_string(event: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    target = rng.choice(["requestId", "occurredAt", "id", "tracestate"])
    event[target] = "a" * HUGE
    return event


def bad_trace_context(event: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    event["traceparent"] = rng.choice(
        ["00-zz-00f067aa0ba902b7-01", "", "00-" + "0" * 31 + "-00f067aa0ba902b7-01", "x" * 100]
    )
    return event


def negative_quantity(event: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    for key in ("qty", "remaining", "price", "totalPrice", "id"):
        if key in event["data"]:
            event["data"][key] = -rng.randrange(1, 10**6)
            return event
    return wrong_type(event, rng)


MUTATIONS: list[Callable[[dict[str, Any], random.Random], dict[str, Any]]] = [
    wrong_type,
    missing_field,
    unknown_field,
    unknown_type,
    huge_string,
    bad_trace_context,
    negative_quantity,
]

# Messages that are no event at all, or that name a type no contract has (sent straight to the
# queue through the default exchange, as only a broker administrator could).
NOT_EVENTS = [b"not json", b"[]", b"42", b'"order.created"', b"{", b"[1, 2]", b"null"]


@dataclasses.dataclass
class Stack:
    product: Any
    order: Any
    product_infrastructure: Any
    order_infrastructure: Any
    broker_url: str


class _NoProducts:
    """product-service's API stand-in: order-service's knowledge comes from events only here."""

    def lookup(self, product_id: int) -> None:
        return None


def open_stack(env: dict[str, str]) -> Stack:
    from order_service.bootstrap import bootstrap as order_bootstrap
    from order_service.config import load_config as order_config
    from product_service.bootstrap import bootstrap as product_bootstrap
    from product_service.config import load_config as product_config

    # Product knowledge is checked in the shared cache at the end: it must outlast the run.
    env = env | {"ORDER_CACHE_TTL_S": "86400"}
    product, product_infrastructure = product_bootstrap(product_config(env))
    order, order_infrastructure = order_bootstrap(order_config(env), product_source=_NoProducts())
    return Stack(product, order, product_infrastructure, order_infrastructure, env["BROKER_URL"])


def run(stack: Stack, examples: int, seed: int, *, within_s: float = 120) -> Report:
    """One pass: `examples` valid events per (queue, type), their mutations, delivered and
    checked. The failures of the report are the properties that did not hold."""
    started = time.monotonic()
    report = Report(seed)
    assert set(HANDLERS) == set(events.queues()), "a receive operation without its fuzz handler"
    products = {
        stack.product.create(name=f"fuzz-{seed}-{n}", price=1, qty=20)["id"]: 20 for n in range(3)
    }
    cases: list[Case] = []
    received = sorted({t for types in events.queues().values() for t in types})
    for event_type in received:
        cases += cases_for(event_type, examples, seed, list(products), report)
        cases += [Case("not-an-event", event_type, body, [], [], True) for body in NOT_EVENTS]
    for queue in events.queues():
        cases.append(Case("unknown-routing-key", queue, body_of({}), [], [], True, queue=queue))
    random.Random(seed).shuffle(cases)
    # Product events keep their order within the ordered queue (the out-of-order pair must
    # arrive as sent): they go in the order generated.
    ordered = [c for c in cases if c.kind == "out-of-order"]
    cases = [c for c in cases if c.kind != "out-of-order"] + ordered
    for case in cases:
        report.kinds[case.kind] += 1

    stop = threading.Event()
    threads = _start_consumers(stack, stop)
    connection = pika.BlockingConnection(pika.URLParameters(stack.broker_url))
    try:
        channel = declare_topology(connection.channel())  # every queue, before anything is sent
        channel.confirm_delivery()
        for queue in HANDLERS:  # what earlier runs left there is not this run's
            _drain(channel, events.dead_letter_queue(queue))
        for case in cases:
            exchange = "" if case.queue else events.EXCHANGE
            properties = pika.BasicProperties(
                delivery_mode=2, content_type="application/json", headers={"event-count": 1}
            )
            channel.basic_publish(exchange, case.routing_key, case.body, properties)
        for queue in HANDLERS:  # last in each queue: once it is dead-lettered, all was handled
            channel.basic_publish("", queue, sentinel(queue), properties)
        dead = _wait_until_handled(stack, channel, cases, within_s, report)
        for thread in threads:
            if not thread.is_alive():
                report.failures.append(f"the consumer of {thread.name} stopped")
        _check_dead_letters(dead, cases, report)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
        connection.close()
    _check_effects(stack, cases, products, report)
    report.seconds = time.monotonic() - started
    return report


def _start_consumers(stack: Stack, stop: threading.Event) -> list[threading.Thread]:
    threads = []
    for queue, (service, handler) in HANDLERS.items():
        use_case = stack.product if service == "product" else stack.order
        infrastructure = (
            stack.product_infrastructure if service == "product" else stack.order_infrastructure
        )
        thread = threading.Thread(
            target=consume,
            args=(infrastructure.connect_broker, queue, getattr(use_case, handler), stop),
            kwargs={"linger_s": 0.05},
            name=queue,
            daemon=True,
        )
        thread.start()
        threads.append(thread)
    return threads


def _drain(channel: Any, queue: str) -> list[tuple[bytes, dict[str, Any]]]:
    """Every message waiting in `queue`, taken."""
    taken = []
    while True:
        method, properties, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            return taken
        taken.append((body, properties.headers or {}))


def _inbox_ids(infrastructure: Any, ids: list[str]) -> set[str]:

    found: set[str] = set()
    with infrastructure.engine.connect() as connection:
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = connection.execute(
                text("SELECT eventId FROM inbox WHERE eventId IN :ids").bindparams(
                    bindparam("ids", expanding=True)
                ),
                {"ids": chunk},
            )
            found |= {row[0] for row in rows}
    return found


def sentinel(queue: str) -> bytes:
    return f"the last message sent to {queue}: not JSON".encode()


def _wait_until_handled(
    stack: Stack, channel: Any, cases: list[Case], within_s: float, report: Report
) -> list[tuple[str, bytes, dict[str, Any]]]:
    """The dead letters, taken until each queue's sentinel is among them: a queue's one
    consumer handles it in order, so everything sent before it was handled by then. (A queue's
    ready count says nothing of the messages its consumer holds unacknowledged.)"""
    deadline = time.monotonic() + within_s
    dead: list[tuple[str, bytes, dict[str, Any]]] = []
    waiting = set(HANDLERS)
    while waiting and time.monotonic() < deadline:
        for queue in HANDLERS:
            for body, headers in _drain(channel, events.dead_letter_queue(queue)):
                if body == sentinel(queue):
                    waiting.discard(queue)
                else:
                    dead.append((queue, body, headers))
        time.sleep(0.2)
    if waiting:
        report.failures.append(f"not handled within {within_s} s: {sorted(waiting)}")
    return dead


def _check_dead_letters(
    dead: list[tuple[str, bytes, dict[str, Any]]], cases: list[Case], report: Report
) -> None:
    """Each invalid message dead-lettered once with a reason; no valid one."""
    expected = collections.Counter((q, c.body) for c in cases if c.dead for q in c.targets())
    valid = {(q, c.body) for c in cases if not c.dead for q in c.targets()}
    seen: collections.Counter = collections.Counter()
    for queue, body, headers in dead:
        seen[(queue, body)] += 1
        report.dead_lettered[queue] += 1
        if (queue, body) in valid:
            report.failures.append(f"{queue}: a valid message dead-lettered: {body[:200]!r}")
        elif (queue, body) in expected and not headers.get(POISON_REASON):
            report.failures.append(f"{queue}: dead-lettered without a reason: {body[:200]!r}")
    for key, count in expected.items():
        if seen[key] != count:
            report.failures.append(
                f"{key[0]}: dead-lettered {seen[key]} times, not {count}: {key[1][:200]!r}"
            )


def _check_effects(
    stack: Stack, cases: list[Case], products: dict[int, int], report: Report
) -> None:

    for queue, infrastructure in (
        ("product-service.order-created", stack.product_infrastructure),
        ("order-service.order-created-log", stack.order_infrastructure),
    ):
        valid = [e["id"] for c in cases if queue in c.targets() for e in c.valid_events]
        invalid = [
            e["id"]
            for c in cases
            if queue in c.targets()
            for e in c.invalid_events
            if isinstance(e.get("id"), str) and len(e["id"]) == 36
        ]
        applied = _inbox_ids(infrastructure, sorted(set(valid)))
        report.applied[f"{queue}: order.created"] += len(applied)
        if applied != set(valid):
            report.failures.append(f"{queue}: {len(set(valid) - applied)} valid events not applied")
        if wrongly := _inbox_ids(infrastructure, invalid):
            report.failures.append(f"{queue}: invalid events applied: {sorted(wrongly)[:5]}")

    # Stock: one outcome per valid order, none for an invalid one; never negative; what was
    # reserved is what the stock lost.
    orders = {
        e["data"]["id"]: e["data"]
        for c in cases
        if "product-service.order-created" in c.targets()
        for e in c.valid_events
    }
    broken = {
        e["data"]["id"]
        for c in cases
        if "product-service.order-created" in c.targets()
        for e in c.invalid_events
        if isinstance(e.get("data"), dict) and isinstance(e["data"].get("id"), int)
    }
    outcomes: collections.Counter = collections.Counter()
    reserved: collections.Counter = collections.Counter()
    with stack.product_infrastructure.engine.connect() as connection:
        for event_type, body in connection.execute(
            text("SELECT type, body FROM outbox WHERE type IN ('stock.reserved', 'stock.rejected')")
        ):
            data = json.loads(body)["data"]
            outcomes[data["orderId"]] += 1
            if event_type == "stock.reserved" and data["orderId"] in orders:
                reserved[data["productId"]] += data["qty"]
        stock = dict(
            connection.execute(
                text("SELECT id, qty FROM products WHERE id IN :ids").bindparams(
                    bindparam("ids", expanding=True)
                ),
                {"ids": list(products)},
            ).all()
        )
    for order_id in orders:
        if outcomes[order_id] != 1:
            report.failures.append(f"order {order_id}: {outcomes[order_id]} stock outcomes, not 1")
    for order_id in broken:
        if outcomes[order_id]:
            report.failures.append(f"invalid order {order_id} changed the stock")
    for product_id, initial in products.items():
        if stock[product_id] < 0:
            report.failures.append(f"product {product_id}: negative stock {stock[product_id]}")
        if initial - stock[product_id] != reserved[product_id]:
            report.failures.append(
                f"product {product_id}: stock {initial} → {stock[product_id]}, "
                f"but {reserved[product_id]} reserved"
            )
    report.applied["product-service.order-created: stock outcomes"] = sum(
        1 for o in orders if outcomes[o]
    )
    report.applied["product-service.order-created: units reserved"] = sum(reserved.values())

    # Product knowledge: each valid product event's product is known at its version (deleted:
    # unknown); the late version 3 did not replace version 5; invalid ones left nothing.
    cache = stack.order_infrastructure.cache
    for case in cases:
        if "order-service.product-changes" not in case.targets():
            continue
        for event in case.valid_events:
            known = cache.get(f"product-snapshot:{event['data']['id']}")
            if event["type"] == "product.deleted":
                ok = known is None
            elif case.kind == "out-of-order":
                ok = known is not None and known["version"] == 5
            else:
                ok = known is not None and known["version"] == event["data"].get("version", 0)
            report.applied[event["type"]] += ok
            if not ok:
                report.failures.append(
                    f"{case.kind} {event['type']} {event['data']['id']}: {known}"
                )
        for event in case.invalid_events:
            data = event.get("data")
            named = data.get("id") if isinstance(data, dict) else None
            if isinstance(named, int) and cache.get(f"product-snapshot:{named}") is not None:
                report.failures.append(f"invalid {case.kind} product event applied")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=300)
    parser.add_argument("--seed", type=int, default=None)
    arguments = parser.parse_args()
    seed = arguments.seed if arguments.seed is not None else random.randrange(2**32)

    import tempfile
    from pathlib import Path

    from devstack import throwaway

    with (
        tempfile.TemporaryDirectory() as folder,
        throwaway.mysql_databases() as databases,
        throwaway.rabbitmq_vhost() as broker_url,
    ):
        env = throwaway.embedded_env(Path(folder), databases)
        env |= {"REDIS_URL": throwaway.redis_database(), "BROKER_URL": broker_url}
        report = run(open_stack(env), arguments.examples, seed, within_s=600)
    print("\n".join(report.lines() + [f"    {failure}" for failure in report.failures[20:]]))
    raise SystemExit(1 if report.failures else 0)


if __name__ == "__main__":
    main()
