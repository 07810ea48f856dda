"""The message broker port, which RabbitMQ (messaging/amqp.py) and the local durable spool
(messaging/spool.py) implement, and what every user of a connection needs."""

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class OutgoingMessage:
    routing_key: str
    body: bytes
    message_id: str


@dataclass(eq=False)  # each delivery is itself: compared and hashed by identity
class Delivery:
    body: bytes
    routing_key: str
    tag: int  # the broker's handle for acknowledging this delivery
    events: int = 1  # how many events the body carries, as its publisher said
    redelivered: bool = False  # delivered before (and not acked then)
    # Why it can never be handled (set by the consumer); dead-lettered with it, where the
    # broker keeps headers (RabbitMQ: x-poison-reason).
    poison_reason: str | None = None


class BrokerUnavailable(Exception):
    """The broker cannot be reached or dropped the connection; reconnect later."""


class Broker(Protocol):
    def publish(self, messages: Sequence[OutgoingMessage]) -> None:
        """Returns once the broker holds every message durably; raises BrokerUnavailable. An
        adapter may carry consecutive messages of one routing key in one delivery (a pack)."""
        ...

    def receive(self, queue: str, max_events: int, wait_s: float) -> list[Delivery]:
        """Deliveries carrying up to max_events events in all (one delivery at least, if any
        is waiting), waiting at most wait_s for the first one."""
        ...

    def settle(
        self, acked: Sequence[Delivery], retried: Sequence[Delivery], dead: Sequence[Delivery]
    ) -> None:
        """Ack what was handled, redeliver what failed (dead-lettered after MAX_DELIVERIES),
        dead-letter at once what can never be handled. A delivery is settled as a whole."""
        ...

    def depth(self, queue: str) -> int | None:
        """How many messages wait in `queue`; None if there is no such queue."""
        ...

    def ping(self) -> None: ...

    def close(self) -> None: ...


class Backoff:
    """Exponential back-off between reconnection attempts: 0.2 s doubling up to 5 s."""

    def __init__(self, first_s: float = 0.2, most_s: float = 5.0) -> None:
        self._first, self._most = first_s, most_s
        self.delay = first_s

    def next(self) -> float:
        delay, self.delay = self.delay, min(self.delay * 2, self._most)
        return delay

    def reset(self) -> None:
        self.delay = self._first


def close_quietly(broker: Broker | None) -> None:
    """Close a broker connection that may already be broken; returns None for `x = …(x)`."""
    if broker is not None:
        # A broken connection may fail to close; it is dropped either way.
        with contextlib.suppress(Exception):
            broker.close()
