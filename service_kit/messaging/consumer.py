"""Consuming one queue: batches of events handed to a handler that applies them in one
transaction; acks after the commit; poison to the dead-letter queue at once; failures retried
one by one, then dead-lettered by the broker after MAX_DELIVERIES. A delivery may carry a pack
of events (asyncapi/events.yaml): it is acked once all of them are applied, redelivered if one
failed (the others then change nothing the second time), and dead-lettered, after its valid
events are applied, if one is not a valid event."""

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from service_kit import logs, request_id
from service_kit.messaging.broker import (
    Backoff,
    Broker,
    BrokerUnavailable,
    Delivery,
    Outage,
    close_quietly,
)
from service_kit.messaging.events import Event, dead_letter_queue, read_message
from service_kit.messaging.hold_back import HoldBack
from service_kit.telemetry import metrics, tracing

BatchHandler = Callable[[Sequence[Event]], None]
_log = logging.getLogger(__name__)


def handle_deliveries(
    broker: Broker, deliveries: Sequence[Delivery], handler: BatchHandler, queue: str
) -> None:
    parsed: list[tuple[Delivery, Event]] = []
    poison: list[Delivery] = []
    for delivery in deliveries:
        events, problems = read_message(delivery.body, delivery.routing_key)
        parsed += [(delivery, event) for event in events]
        if problems:
            _log.error("dead-lettering a %s message: %s", delivery.routing_key, problems[0])
            delivery.poison_reason = str(problems[0])
            poison.append(delivery)
    spans, parsed = _continued_traces(parsed, queue)
    try:
        handler([event for _, event in parsed])
    except Exception:
        _log.exception("a batch of %d events failed; applying them one by one", len(parsed))
        failed = _failed_one_by_one(parsed, handler)
    else:
        failed = set()
    dead = set(poison)
    retried = [d for d in deliveries if d in failed and d not in dead]
    acked = [d for d in deliveries if d not in failed and d not in dead]
    broker.settle(acked, retried, poison)
    for span in spans:
        span.end()
    applied = sum(1 for delivery, _ in parsed if delivery not in failed and delivery not in dead)
    _count(queue, len(parsed), applied, retried, poison, [d for d in deliveries if d.redelivered])


def _continued_traces(
    parsed: list[tuple[Delivery, Event]], queue: str
) -> tuple[list[Any], list[tuple[Delivery, Event]]]:
    """When spans are recorded: a consumer span for each event, continuing its trace, and the
    events carrying their span's context instead, so that what their handling causes (events,
    log lines) follows from it."""
    if not tracing.recording():
        return [], parsed
    spans, continued = [], []
    for delivery, event in parsed:
        span = tracing.start_span(
            f"process {event.type}",
            event.trace,
            tracing.SpanKind.CONSUMER,
            **{"messaging.destination.name": queue, "messaging.message.id": event.id},
        )
        spans.append(span)
        continued.append((delivery, dataclasses.replace(event, trace=tracing.carrier_of(span))))
    return spans, continued


def _count(
    queue: str,
    events: int,
    applied: int,
    retried: Sequence[Delivery],
    dead: Sequence[Delivery],
    redelivered: Sequence[Delivery],
) -> None:
    metrics.consumer_batch.labels(queue).observe(events)
    if applied:
        metrics.events_applied.labels(queue).inc(applied)
    for counter, settled in (
        (metrics.events_retried, retried),
        (metrics.events_dead_lettered, dead),
        (metrics.events_redelivered, redelivered),
    ):
        if settled:
            counter.labels(queue).inc(_events(settled))


def _failed_one_by_one(
    parsed: Sequence[tuple[Delivery, Event]], handler: BatchHandler
) -> set[Delivery]:
    """The deliveries with an event that failed alone too."""
    failed: set[Delivery] = set()
    for delivery, event in parsed:
        _bind(event)
        try:
            handler([event])
        except Exception:
            _log.exception("event %s (%s) failed; it will be redelivered", event.id, event.type)
            failed.add(delivery)
    return failed


def consume(
    connect: Callable[[], Broker],
    queue: str,
    handler: BatchHandler,
    stop: threading.Event,
    *,
    batch_size: int = 500,
    wait_s: float = 0.1,
    linger_s: float = 0.2,
    hold_back: HoldBack | None = None,
) -> None:
    """Until `stop` is set: the batch in hand is finished and acked before returning. A batch
    that is not full waits up to `linger_s` for more, and goes as soon as it is full: events
    applied in bigger batches cost the workers, RabbitMQ and the database much less each (each
    hop of an event then takes up to `linger_s` more at low load), while a backlog is applied at
    the speed of the handler, not capped by a fixed wait per batch. With `hold_back`, each batch
    first waits its turn while the machine is busy with requests."""
    for counter in _COUNTERS:  # each at 0 from the start: a rate needs the series to exist
        counter.labels(queue)
    broker: Broker | None = None
    backoff = Backoff()
    outage = Outage(queue, _log)
    depth_told_at = 0.0
    if hold_back is not None:
        hold_back.tell(queue, caught_up=False)  # until a round says otherwise
    while not stop.is_set():
        try:
            broker = broker or connect()
            if time.monotonic() - depth_told_at >= QUEUE_DEPTH_EVERY_S:
                _tell_depths(broker, queue)
                depth_told_at = time.monotonic()
            if hold_back is not None:
                hold_back.wait_turn(stop, broker.ping)
                if stop.is_set():
                    break
            deliveries = broker.receive(queue, batch_size, wait_s)
            if deliveries:
                wanted = batch_size - _events(deliveries)
                deliveries += _more_within(broker, queue, wanted, linger_s)
            backoff.reset()
            outage.recovered()
            if deliveries:
                handle_deliveries(broker, deliveries, handler, queue)
            if hold_back is not None:
                hold_back.tell(queue, caught_up=_events(deliveries) < batch_size)
        except (BrokerUnavailable, OSError) as exc:
            # Unacked deliveries come back from the broker: nothing is lost, and the inbox
            # makes their second application a no-op.
            outage.failed(exc, backoff)
            broker = close_quietly(broker)
            stop.wait(backoff.next())
    close_quietly(broker)


QUEUE_DEPTH_EVERY_S = 5.0
_COUNTERS = (
    metrics.events_applied,
    metrics.events_retried,
    metrics.events_dead_lettered,
    metrics.events_redelivered,
)


def _tell_depths(broker: Broker, queue: str) -> None:
    """The messages waiting in the queue and in its dead-letter queue, as the broker says."""
    for name in (queue, dead_letter_queue(queue)):
        if (depth := broker.depth(name)) is not None:
            metrics.queue_messages.labels(name).set(depth)


def _more_within(broker: Broker, queue: str, wanted: int, linger_s: float) -> list[Delivery]:
    """Deliveries of up to `wanted` more events, as they arrive, for at most `linger_s`."""
    more: list[Delivery] = []
    deadline = time.monotonic() + linger_s
    while _events(more) < wanted and (left := deadline - time.monotonic()) > 0:
        more += broker.receive(queue, wanted - _events(more), left)
    return more


def _events(deliveries: Sequence[Delivery]) -> int:
    return sum(delivery.events for delivery in deliveries)


def each(events: Sequence[Event]) -> Iterator[Event]:
    """The events of a batch, each with its request id, id and trace context bound for the log
    lines and events it causes."""
    for event in events:
        _bind(event)
        yield event
    logs.bind_event(None)  # what follows (the batch's commit, its cache) is no one event's
    tracing.continue_from({})


def _bind(event: Event) -> None:
    request_id.bind(event.request_id)
    logs.bind_event(event.id)
    tracing.continue_from(event.trace)
