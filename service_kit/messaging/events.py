"""Events: the envelope and its contract, openapi/events.yaml, which also names the queues of
the system and the event types each service publishes."""

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
DEAD_LETTER_EXCHANGE = "events.dead-letter"
MAX_DELIVERIES = 5  # a message that failed this often goes to its queue's dead-letter queue
SCHEMA_FILE = Path(__file__).resolve().parents[2] / "openapi" / "events.yaml"


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
        return [], [PoisonMessage(f"not JSON: {exc}")]
    if isinstance(document, list) and document:
        elements = document
    elif isinstance(document, dict):
        elements = [document]
    else:
        return [], [PoisonMessage("neither an event nor a non-empty pack of events")]
    events, poison = [], []
    for element in elements:
        try:
            event = _event(element)
        except PoisonMessage as exc:
            poison.append(exc)
            continue
        if event.type == routing_key:
            events.append(event)
        else:
            poison.append(PoisonMessage(f"a {event.type} event sent as {routing_key}"))
    return events, poison


def pack(bodies: Sequence[bytes]) -> bytes:
    """The message body carrying these events' bodies (consecutive events of one type)."""
    return bodies[0] if len(bodies) == 1 else b"[" + b",".join(bodies) + b"]"


def _event(document: Any) -> Event:
    try:
        _validator("Envelope")(document)
        _validator(document["type"])(document["data"])
    except fastjsonschema.JsonSchemaException as exc:
        raise PoisonMessage(f"not a valid event: {exc.message}") from None
    return Event(
        id=document["id"],
        type=document["type"],
        occurred_at=document["occurredAt"],
        request_id=document["requestId"],
        data=document["data"],
        trace={key: document[key] for key in TRACE_CONTEXT if key in document},
    )


TRACE_CONTEXT = (tracing.TRACEPARENT, tracing.TRACESTATE)


@cache
def schemas() -> dict[str, Any]:
    return yaml.safe_load(SCHEMA_FILE.read_text())


def _schema_for(definition: str) -> dict[str, Any]:
    document = schemas()
    return {
        "$schema": document["$schema"],
        "$defs": document["$defs"],
        "$ref": f"#/$defs/{definition}",
    }


_UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


@cache
def _validator(definition: str) -> Callable[[Any], Any]:
    """Compiled once: fastjsonschema is an order of magnitude faster than interpreting."""
    return fastjsonschema.compile(_schema_for(definition), formats={"uuid": _UUID})


def routes(routing_key: str, pattern: str) -> bool:
    """AMQP topic matching: `*` is one word, `#` is zero or more words."""
    regex = re.escape(pattern).replace(r"\*", r"[^.]+").replace(r"\#", r".*")
    return re.fullmatch(regex, routing_key) is not None


@cache
def queues() -> dict[str, tuple[str, ...]]:
    """Every queue of the system and the routing keys it receives (topic patterns)."""
    return {queue: tuple(patterns) for queue, patterns in schemas()["x-queues"].items()}


@cache
def ordered_queues() -> frozenset[str]:
    """The queues one consumer at a time receives from, so their events apply in order."""
    ordered = frozenset(schemas()["x-ordered-queues"])
    assert ordered <= set(queues()), f"x-ordered-queues names unknown queues: {ordered}"
    return ordered


def queues_of(service: str) -> dict[str, tuple[str, ...]]:
    """The queues `service` consumes (named after it)."""
    return {queue: keys for queue, keys in queues().items() if queue.startswith(f"{service}.")}


@cache
def publishers() -> dict[str, tuple[str, ...]]:
    """Every service and the event types (routing keys) it publishes."""
    return {service: tuple(types) for service, types in schemas()["x-publishers"].items()}


def queues_for(routing_key: str) -> list[str]:
    return [q for q, patterns in queues().items() if any(routes(routing_key, p) for p in patterns)]
