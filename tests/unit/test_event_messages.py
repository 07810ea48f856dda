"""Event ids, and reading a message body: one event, or a pack of them (asyncapi/events.yaml)."""

import time
import uuid

import pytest

from service_kit.messaging.events import PoisonMessage, new_event, pack, read_message
from tests.helpers import order_created


def body(event) -> bytes:  # noqa: ANN001
    return event.to_json().encode()


def test_an_event_alone_is_its_envelope():
    event = order_created(1, 2, 3)
    assert pack([body(event)]) == body(event)
    events, problems = read_message(pack([body(event)]), "order.created")
    assert events == [event] and problems == []


def test_a_pack_gives_its_events_in_order():
    created = [order_created(n, 2, 1) for n in range(1, 4)]
    events, problems = read_message(pack([body(e) for e in created]), "order.created")
    assert events == created and problems == []


def test_an_invalid_event_in_a_pack_leaves_the_others_valid():
    first, last = order_created(1, 2, 1), order_created(3, 2, 1)
    events, problems = read_message(
        pack([body(first), b'{"id": "x", "type": "order.created"}', body(last)]), "order.created"
    )
    assert events == [first, last]
    assert len(problems) == 1 and "not a valid event" in str(problems[0])


@pytest.mark.parametrize(
    ("message", "problem"),
    [
        (b"not json", "not JSON"),
        (b"[]", "neither an event nor a non-empty pack"),
        (b"42", "neither an event nor a non-empty pack"),
        (b'"order.created"', "neither an event nor a non-empty pack"),
        (b"[1, 2]", "not a valid event"),
    ],
)
def test_what_is_not_an_event_or_a_pack_is_poison(message, problem):
    events, problems = read_message(message, "order.created")
    assert events == []
    assert problems and all(isinstance(p, PoisonMessage) for p in problems)
    assert problem in str(problems[0])


def test_an_event_of_another_type_than_its_routing_key_is_poison():
    # The broker checks who may publish a routing key; the body must not say otherwise.
    reserved = new_event("stock.reserved", {"orderId": 1, "productId": 2, "qty": 1, "remaining": 0})
    created = order_created(1, 2, 1)
    events, problems = read_message(pack([body(created), body(reserved)]), "order.created")
    assert events == [created]
    assert len(problems) == 1 and "a stock.reserved event sent as order.created" in str(problems[0])
    events, problems = read_message(body(created), "product.updated")
    assert events == [] and "sent as product.updated" in str(problems[0])


def test_event_ids_are_uuids_that_grow_with_time():
    """Version 7: the inbox, keyed by event id, then grows at the end of its index."""
    first = new_event("order.created", {}).id
    time.sleep(0.002)
    later = [new_event("order.created", {}).id for _ in range(100)]
    parsed = [uuid.UUID(event_id) for event_id in [first, *later]]
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in parsed)
    assert all(first < event_id for event_id in later)
    assert len(set(later)) == len(later)
    milliseconds = int(first.replace("-", "")[:12], 16)
    assert abs(milliseconds / 1000 - time.time()) < 5
