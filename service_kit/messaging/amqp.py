"""RabbitMQ through pika. Queues are quorum queues with a delivery limit and a dead-letter
queue each; publishing is one AMQP transaction per batch (not a round trip per message), and
consecutive events of one type go as one message, a pack (asyncapi/events.yaml)."""

import collections
import contextlib
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import pika
import pika.exceptions

from service_kit.messaging import events
from service_kit.messaging.broker import BrokerUnavailable, Delivery, OutgoingMessage

# Messages in hand per consumer: twice a batch of 500 events sent one per message (the next batch
# is on its way while one is applied); in full packs, at most 100,000 events (~45 MB).
_PREFETCH = 1000
# RabbitMQ's cost is per message, not per byte: packs cut its CPU per order several-fold
# (docs/performance.md).
PACK_SIZE = 100
_EVENT_COUNT = "event-count"  # the header of a pack: how many events it carries
_POISON_REASON = "x-poison-reason"  # the header of a dead letter: why it could not be read
_MOST_REASON = 1024
_log = logging.getLogger(__name__)
_PROPERTIES = {"delivery_mode": pika.DeliveryMode.Persistent, "content_type": "application/json"}


def _parameters(url: str) -> pika.URLParameters:
    parameters = pika.URLParameters(url)
    parameters.heartbeat = 30
    parameters.blocked_connection_timeout = 30
    parameters.socket_timeout = 5
    parameters.stack_timeout = 10
    parameters.connection_attempts = 1
    return parameters


Channel = pika.adapters.blocking_connection.BlockingChannel
_ACCESS_REFUSED = 403
_PRECONDITION_FAILED = 406


def declare_topology(channel: Channel, owner: str | None = None) -> Channel:
    """The exchanges, and the queues `owner` consumes (every queue without one). A service's
    broker user may declare its own queues only: where the broker refuses an exchange (the
    definitions declared it, infra/rabbitmq), it is only checked to exist (a passive declaration
    needs no permission), and a queue an earlier release declared with other arguments is kept
    as it is (docs/architecture.md, "Queues of an earlier release"). A refusal closes its
    channel: the channel to go on with is returned."""
    channel = _exchange(channel, events.EXCHANGE, "topic")
    for exchange in events.dead_letter_exchanges(owner):
        channel = _exchange(channel, exchange, "direct")
    queues = events.queues() if owner is None else events.queues_of(owner)
    for queue, patterns in queues.items():
        channel = _queue(channel, queue)
        for pattern in patterns:
            channel.queue_bind(queue, events.EXCHANGE, routing_key=pattern)
        dead = events.dead_letter_queue(queue)
        channel = _queue(channel, dead)
        channel.queue_bind(dead, events.dead_letter_exchange(queue), routing_key=queue)
    return channel


def _exchange(channel: Channel, name: str, kind: str) -> Channel:
    try:
        channel.exchange_declare(name, exchange_type=kind, durable=True)
        return channel
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code != _ACCESS_REFUSED:
            raise
    channel = channel.connection.channel()
    channel.exchange_declare(name, passive=True)  # missing: NOT_FOUND, raised
    return channel


def _queue(channel: Channel, name: str) -> Channel:
    try:
        channel.queue_declare(name, durable=True, arguments=queue_arguments(name))
        return channel
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code != _PRECONDITION_FAILED:
            raise
        _log.warning("queue %s exists with other arguments, kept as it is: %s", name, exc)
    channel = channel.connection.channel()
    channel.queue_declare(name, passive=True)
    return channel


def queue_arguments(queue: str) -> dict[str, Any]:
    """As the contract declares them (quorum, delivery limit, dead letters, single active
    consumer where ordered)."""
    return events.queue_arguments(queue)


@contextlib.contextmanager
def _frames_gathered(connection: Any) -> Iterator[None]:
    """The frames a pika connection emits meanwhile are handed to its transport as one buffer
    at the end (pika's own connection-level hook, shadowed on this instance only)."""
    frames: list[bytes] = []
    connection._adapter_emit_data = frames.append
    try:
        yield
    finally:
        del connection._adapter_emit_data
        if frames:
            connection._adapter_emit_data(b"".join(frames))


def _runs(messages: Sequence[OutgoingMessage]) -> Iterator[Sequence[OutgoingMessage]]:
    """The messages in order, consecutive ones of one routing key together, PACK_SIZE at most."""
    start = 0
    for end in range(1, len(messages) + 1):
        if (
            end == len(messages)
            or messages[end].routing_key != messages[start].routing_key
            or end - start == PACK_SIZE
        ):
            yield messages[start:end]
            start = end


class AmqpBroker:
    """One connection, one channel: use it from one thread only (pika's rule)."""

    def __init__(self, url: str, owner: str | None = None) -> None:
        try:
            self._connection = pika.BlockingConnection(_parameters(url))
            self._channel = declare_topology(self._connection.channel(), owner)
        except pika.exceptions.AMQPError as exc:
            raise BrokerUnavailable(repr(exc)) from exc
        self._in_transaction = False
        self._depth_channel: Any = None
        self._dead_letter_channel: Any = None
        self._consuming: str | None = None
        self._buffer: collections.deque[Delivery] = collections.deque()

    def publish(self, messages: Sequence[OutgoingMessage]) -> None:
        try:
            if not self._in_transaction:
                self._channel.tx_select()
                self._in_transaction = True
            # The channel's own basic_publish sends each message at once; its underlying
            # channel marshals the frames, which are gathered here and handed to the
            # connection as one buffer (pika would write each of the three frames of a message
            # with a send() of its own), and tx_commit sends them.
            queue_frames = self._channel._impl.basic_publish
            with _frames_gathered(self._connection._impl):
                for run in _runs(messages):
                    queue_frames(
                        events.EXCHANGE,
                        run[0].routing_key,
                        events.pack([message.body for message in run]),
                        pika.BasicProperties(
                            message_id=run[0].message_id if len(run) == 1 else None,
                            headers={_EVENT_COUNT: len(run)},
                            **_PROPERTIES,
                        ),
                    )
            self._channel.tx_commit()  # commit-ok: the broker holds every message of the batch
        except pika.exceptions.AMQPError as exc:
            raise BrokerUnavailable(repr(exc)) from exc

    def receive(self, queue: str, max_events: int, wait_s: float) -> list[Delivery]:
        try:
            if self._consuming is None:
                self._channel.basic_qos(prefetch_count=_PREFETCH)
                self._channel.basic_consume(queue, self._on_message)
                self._consuming = queue
            if not self._buffer:
                self._connection.process_data_events(time_limit=wait_s)
            self._connection.process_data_events(time_limit=0)  # and whatever else arrived
        except pika.exceptions.AMQPError as exc:
            raise BrokerUnavailable(repr(exc)) from exc
        received: list[Delivery] = []
        carried = 0
        while self._buffer and (not received or carried + self._buffer[0].events <= max_events):
            received.append(self._buffer.popleft())
            carried += received[-1].events
        return received

    def _on_message(self, _channel, method, properties, body: bytes) -> None:  # noqa: ANN001
        count = (properties.headers or {}).get(_EVENT_COUNT)
        events_carried = count if isinstance(count, int) and count > 0 else 1
        self._buffer.append(
            Delivery(
                body, method.routing_key, method.delivery_tag, events_carried, method.redelivered
            )
        )

    def settle(
        self, acked: Sequence[Delivery], retried: Sequence[Delivery], dead: Sequence[Delivery]
    ) -> None:
        try:
            if acked and not retried and not dead:
                self._channel.basic_ack(max(d.tag for d in acked), multiple=True)
                return
            for delivery in acked:
                self._channel.basic_ack(delivery.tag)
            for delivery in retried:  # the quorum queue counts it; past the limit: dead letter
                self._channel.basic_nack(delivery.tag, requeue=True)
            if dead:
                self._dead_letter(dead)
        except pika.exceptions.AMQPError as exc:
            raise BrokerUnavailable(repr(exc)) from exc

    def _dead_letter(self, dead: Sequence[Delivery]) -> None:
        """Poison goes to the queue's dead-letter queue with its reason (x-poison-reason): a copy
        is published to the dead-letter exchange, confirmed, and then the original acked. (The
        broker's own dead-lettering of a rejected message can add no header of ours.) A crash
        in between dead-letters it twice, never not at all."""
        queue = self._consuming or ""  # dead letters come from the queue received from
        if self._dead_letter_channel is None or not self._dead_letter_channel.is_open:
            self._dead_letter_channel = self._connection.channel()
            self._dead_letter_channel.confirm_delivery()
        for delivery in dead:
            self._dead_letter_channel.basic_publish(
                events.dead_letter_exchange(queue),
                queue,
                delivery.body,
                pika.BasicProperties(
                    headers={
                        _POISON_REASON: (delivery.poison_reason or "")[:_MOST_REASON],
                        "x-original-routing-key": delivery.routing_key,
                    },
                    **_PROPERTIES,
                ),
            )
            self._channel.basic_ack(delivery.tag)

    def depth(self, queue: str) -> int | None:
        # Ready messages, from a passive declaration (it changes nothing) on a channel of its
        # own: the broker closes the channel of one that names a missing queue.
        try:
            if self._depth_channel is None or not self._depth_channel.is_open:
                self._depth_channel = self._connection.channel()
            return self._depth_channel.queue_declare(queue, passive=True).method.message_count
        except pika.exceptions.ChannelClosedByBroker:
            return None
        except pika.exceptions.AMQPError as exc:
            raise BrokerUnavailable(repr(exc)) from exc

    def ping(self) -> None:
        try:
            self._connection.process_data_events(time_limit=0)
        except pika.exceptions.AMQPError as exc:
            raise BrokerUnavailable(repr(exc)) from exc

    def close(self) -> None:
        try:
            if self._connection.is_open:
                self._connection.close()
        except pika.exceptions.AMQPError:
            pass  # already gone
