"""Events: the envelope, its contract (openapi/events.yaml), and the broker topology every
process declares so that a fresh broker just works and no event is ever unroutable."""

import datetime
import re
import uuid
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from service_kit import exact_json, request_id

EXCHANGE = "events"
DEAD_LETTER_EXCHANGE = "events.dead-letter"
MAX_DELIVERIES = 5  # a message that failed this often goes to its queue's dead-letter queue
SCHEMA_FILE = Path(__file__).resolve().parent.parent / "openapi" / "events.yaml"

# Every queue of the system and the routing keys it receives (topic patterns).
QUEUES: dict[str, tuple[str, ...]] = {
    "product-service.order-created": ("order.created",),
    "order-service.order-created-log": ("order.created",),
    "order-service.stock-results": ("stock.reserved", "stock.rejected"),
    "order-service.product-changes": ("product.*",),
}


def dead_letter_queue(queue: str) -> str:
    return f"{queue}.dead-letter"


@dataclass(frozen=True)
class Event:
    id: str
    type: str
    occurred_at: str
    request_id: str
    data: dict[str, Any]

    def to_json(self) -> str:
        return exact_json.dumps(
            {
                "id": self.id,
                "type": self.type,
                "occurredAt": self.occurred_at,
                "requestId": self.request_id,
                "data": self.data,
            }
        )


def new_event(event_type: str, data: dict[str, Any]) -> Event:
    """An event caused by the current request (or by the event being handled)."""
    return Event(
        id=str(uuid.uuid4()),
        type=event_type,
        occurred_at=datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z"),
        request_id=request_id.current() or request_id.accept_or_generate(None),
        data=exact_json.loads(exact_json.dumps(data)),  # plain JSON values, money exact
    )


class PoisonMessage(ValueError):
    """A message that is not a valid event: retrying cannot help."""


def parse_event(body: bytes) -> Event:
    try:
        document = exact_json.loads(body)
    except ValueError as exc:
        raise PoisonMessage(f"not JSON: {exc}") from None
    errors = sorted(_validator().iter_errors(document), key=lambda e: list(e.path))
    if not errors:
        data_validator = _data_validator(document["type"])
        errors = list(data_validator.iter_errors(document["data"]))
    if errors:
        raise PoisonMessage(f"not a valid event: {errors[0].message}")
    return Event(
        id=document["id"],
        type=document["type"],
        occurred_at=document["occurredAt"],
        request_id=document["requestId"],
        data=document["data"],
    )


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


@cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(_schema_for("Envelope"))


@cache
def _data_validator(event_type: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(_schema_for(event_type))


def routes(routing_key: str, pattern: str) -> bool:
    """AMQP topic matching: `*` is one word, `#` is zero or more words."""
    regex = re.escape(pattern).replace(r"\*", r"[^.]+").replace(r"\#", r".*")
    return re.fullmatch(regex, routing_key) is not None


def queues_for(routing_key: str) -> list[str]:
    return [q for q, patterns in QUEUES.items() if any(routes(routing_key, p) for p in patterns)]
