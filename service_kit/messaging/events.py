"""Events: the envelope and its contract, asyncapi/events.yaml (AsyncAPI 3.0), which also names
the queues of the system (its channels of AMQP queues), what each consumes (its `receive`
operations) and the event types each service publishes (its `send` operations)."""

import datetime
import os
import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import fastjsonschema
import yaml

from service_kit import exact_json, request_id
from service_kit.telemetry import tracing
from service_kit.telemetry.tracing import Carrier

EXCHANGE = "events"
MAX_DELIVERIES = 5  # a message that failed this often goes to its queue's dead-letter queue
CONTRACT_FILE = Path(__file__).resolve().parents[2] / "asyncapi" / "events.yaml"


def dead_letter_queue(queue: str) -> str:
    return f"{queue}.dead-letter"


@dataclass(frozen=True)
class Event:
    id: str
    type: str
    occurred_at: str
    request_id: str
    data: dict[str, Any]
    # The W3C trace context of the work that caused it (`traceparent`, `tracestate`): its
    # consumers continue that trace.
    trace: Carrier = field(default_factory=dict, compare=False)

    def to_json(self) -> str:
        return exact_json.dumps(
            {
                "id": self.id,
                "type": self.type,
                "occurredAt": self.occurred_at,
                "requestId": self.request_id,
                **self.trace,
                "data": self.data,
            }
        )


def new_event(
    event_type: str,
    data: dict[str, Any],
    *,
    caused_by: str | None = None,
    trace: Carrier | None = None,
) -> Event:
    """An event caused by request `caused_by` in trace context `trace`, by default the current
    request's (or the event's being handled). `data` may hold Decimals and datetimes: `to_json`
    writes them exactly."""
    return Event(
        id=str(time_ordered_uuid()),
        type=event_type,
        occurred_at=datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z"),
        request_id=caused_by or request_id.current() or request_id.accept_or_generate(None),
        data=data,
        trace=tracing.current() if trace is None else trace,
    )


def time_ordered_uuid() -> uuid.UUID:
    """A UUID version 7 (RFC 9562): the Unix time in milliseconds, then 74 random bits. Event
    ids are the inbox's primary key: ids that grow with time are added at the end of its index,
    where random ones (version 4) land on any page, and once the table outgrows the buffer pool,
    each on a page to be read first."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    value = value & ~(0xF << 76) | 0x7 << 76  # version 7
    value = value & ~(0x3 << 62) | 0x2 << 62  # variant 10 (RFC 9562)
    return uuid.UUID(int=value)


class PoisonMessage(ValueError):
    """A message that is not a valid event: retrying cannot help."""


def read_message(body: bytes, routing_key: str) -> tuple[list[Event], list[PoisonMessage]]:
    """The valid events of a message body (an envelope, or a pack of them) in their order, and
    what is wrong with the rest: a body that is not JSON, not an envelope or a non-empty pack,
    or an element of a pack that is not a valid event of the message's type (its routing key:
    what the broker let its sender publish)."""
    try:
        document = exact_json.loads(body)
    except ValueError as exc:
        return [], [PoisonMessage(f"not JSON: {_clipped(str(exc))}")]
    if isinstance(document, list) and document:
        elements = document
    elif isinstance(document, dict):
        elements = [document]
    else:
        return [], [PoisonMessage("neither an event nor a non-empty pack of events")]
    if routing_key not in messages():
        return [], [PoisonMessage(f"no event type {_clipped(routing_key)!r} in the contract")]
    events, poison = [], []
    for element in elements:
        try:
            events.append(_event(element, routing_key))
        except PoisonMessage as exc:
            poison.append(exc)
    return events, poison


def pack(bodies: Sequence[bytes]) -> bytes:
    """The message body carrying these events' bodies (consecutive events of one type)."""
    return bodies[0] if len(bodies) == 1 else b"[" + b",".join(bodies) + b"]"


def _event(document: Any, routing_key: str) -> Event:
    if not isinstance(document, dict):
        raise PoisonMessage("not a valid event: not a JSON object")
    if (event_type := document.get("type")) != routing_key:
        named = event_type if isinstance(event_type, str) else repr(event_type)
        raise PoisonMessage(f"a {_clipped(named)} event sent as {routing_key}")
    try:
        _validator(routing_key)(document)
    except fastjsonschema.JsonSchemaException as exc:
        raise PoisonMessage(f"not a valid event: {_clipped(exc.message)}") from None
    return Event(
        id=document["id"],
        type=document["type"],
        occurred_at=document["occurredAt"],
        request_id=document["requestId"],
        data=document["data"],
        trace={key: document[key] for key in TRACE_CONTEXT if key in document},
    )


def _clipped(text: str, most: int = 200) -> str:
    """At most `most` characters of what a message said: a reason must not carry a huge body."""
    return text if len(text) <= most else text[:most] + "…"


TRACE_CONTEXT = (tracing.TRACEPARENT, tracing.TRACESTATE)


@cache
def contract() -> dict[str, Any]:
    """The AsyncAPI document."""
    return yaml.safe_load(CONTRACT_FILE.read_text())


def _resolved(reference: dict[str, Any]) -> dict[str, Any]:
    """The object a local `$ref` (JSON pointer) names, or the object itself."""
    while "$ref" in reference:
        node: Any = contract()
        for part in reference["$ref"].removeprefix("#/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        reference = node
    return reference


@cache
def messages() -> dict[str, dict[str, Any]]:
    """Every event type (a message's name, its routing key) and its message."""
    found = {}
    for channel in contract()["channels"].values():
        for message in map(_resolved, channel.get("messages", {}).values()):
            if message["name"] in event_types():
                found[message["name"]] = message
    return found


@cache
def event_types() -> tuple[str, ...]:
    return tuple(contract()["components"]["schemas"]["EventType"]["enum"])


def event_schema(event_type: str) -> dict[str, Any]:
    """The JSON Schema of one event of the type (not a pack): its message's payload is one
    event or a pack of them, `oneOf: [event, array of event]`."""
    return {**contract(), **messages()[event_type]["payload"]["oneOf"][0]}


def message_schema(event_type: str) -> dict[str, Any]:
    """The JSON Schema of a message body of the type: one event or a pack of them."""
    return {**contract(), **messages()[event_type]["payload"]}


_UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
FORMATS = {"uuid": _UUID}


@cache
def _validator(event_type: str) -> Callable[[Any], Any]:
    """Compiled once: fastjsonschema is an order of magnitude faster than interpreting. The
    document is the schema's root, so that its `#/components/...` references resolve."""
    return fastjsonschema.compile(event_schema(event_type), formats=FORMATS)


def _operations(action: str) -> list[tuple[str, dict[str, Any], list[dict[str, Any]]]]:
    """(service, channel, messages) of each operation of the action: its one tag names the
    service (or a person, the operator, who reads dead letters)."""
    found = []
    for operation in contract()["operations"].values():
        (tag,) = operation["tags"]
        if operation["action"] == action and tag["name"] != OPERATOR:
            found.append(
                (
                    tag["name"],
                    _resolved(operation["channel"]),
                    [_resolved(m) for m in operation["messages"]],
                )
            )
    return found


def _queue_channel(queue: str) -> dict[str, Any]:
    for channel in contract()["channels"].values():
        if channel["bindings"]["amqp"]["is"] == "queue" and channel["address"] == queue:
            return channel
    raise KeyError(f"no queue {queue} in the contract")


OPERATOR = "operator"


def queue_arguments(queue: str) -> dict[str, Any]:
    """The RabbitMQ arguments the queue is declared with (its channel's AMQP binding)."""
    return dict(_queue_channel(queue)["bindings"]["amqp"]["x-arguments"])


def dead_letter_exchange(queue: str) -> str:
    """Where a consumed queue's dead letters go: its service's own exchange (its arguments)."""
    return queue_arguments(queue)["x-dead-letter-exchange"]


def dead_letter_exchanges(service: str | None = None) -> list[str]:
    """The dead-letter exchanges of `service`'s queues (of every queue without one)."""
    consumed = queues() if service is None else queues_of(service)
    return sorted({dead_letter_exchange(queue) for queue in consumed})


def routes(routing_key: str, pattern: str) -> bool:
    """AMQP topic matching: `*` is one word, `#` is zero or more words."""
    regex = re.escape(pattern).replace(r"\*", r"[^.]+").replace(r"\#", r".*")
    return re.fullmatch(regex, routing_key) is not None


@cache
def queues() -> dict[str, tuple[str, ...]]:
    """Every consumed queue of the system and the routing keys it is bound to: the event types
    of its receive operation."""
    return {
        channel["address"]: tuple(message["name"] for message in received)
        for _, channel, received in _operations("receive")
    }


@cache
def ordered_queues() -> frozenset[str]:
    """The queues one consumer at a time receives from, so their events apply in order."""
    return frozenset(q for q in queues() if queue_arguments(q).get("x-single-active-consumer"))


@cache
def consumers() -> dict[str, str]:
    """Every consumed queue and the service that consumes it."""
    return {channel["address"]: service for service, channel, _ in _operations("receive")}


def queues_of(service: str) -> dict[str, tuple[str, ...]]:
    """The queues `service` consumes."""
    return {queue: keys for queue, keys in queues().items() if consumers()[queue] == service}


@cache
def publishers() -> dict[str, tuple[str, ...]]:
    """Every service and the event types (routing keys) it publishes: its send operations."""
    published: dict[str, tuple[str, ...]] = {}
    for service, _, sent in _operations("send"):
        published[service] = published.get(service, ()) + tuple(m["name"] for m in sent)
    return published


def queues_for(routing_key: str) -> list[str]:
    return [q for q, patterns in queues().items() if any(routes(routing_key, p) for p in patterns)]
