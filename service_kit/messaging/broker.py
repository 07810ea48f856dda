"""The message broker port, which RabbitMQ (messaging/amqp.py) and the local durable spool
(messaging/spool.py) implement, and what every user of a connection needs."""

import contextlib
import logging
import time
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
        self._first, self.most_s = first_s, most_s
        self.delay = first_s

    def next(self) -> float:
        delay, self.delay = self.delay, min(self.delay * 2, self.most_s)
        return delay

    def reset(self) -> None:
        self.delay = self._first


class Outage:
    """What a broker task says about an outage: one warning when the broker is lost (with the
    back-off it retries on), each failed attempt after that at DEBUG only, and one line when it
    is back, with how many attempts and how long it took. pika's own loggers are kept to
    CRITICAL (service_kit/logs.py): each failure reaches the task as BrokerUnavailable anyway."""

    def __init__(self, who: str, log: logging.Logger) -> None:
        self._who, self._log = who, log
        self.failed_attempts = 0
        self._since = 0.0

    def failed(self, reason: object, backoff: Backoff) -> None:
        if self.failed_attempts == 0:
            self._since = time.monotonic()
            self._log.warning(
                "%s: broker unavailable (%s); retrying in %.1fs, then at most every %.0fs",
                self._who,
                reason,
                backoff.delay,
                backoff.most_s,
            )
        else:
            self._log.debug(
                "%s: broker still unavailable after %d attempts (%s); next in %.1fs",
                self._who,
                self.failed_attempts,
                reason,
                backoff.delay,
            )
        self.failed_attempts += 1

    def recovered(self) -> None:
        if self.failed_attempts:
            self._log.warning(
                "%s: broker reachable again after %d failed attempts over %.1fs",
                self._who,
                self.failed_attempts,
                time.monotonic() - self._since,
            )
            self.failed_attempts = 0


def close_quietly(broker: Broker | None) -> None:
    """Close a broker connection that may already be broken; returns None for `x = …(x)`."""
    if broker is not None:
        # A broken connection may fail to close; it is dropped either way.
        with contextlib.suppress(Exception):
            broker.close()
