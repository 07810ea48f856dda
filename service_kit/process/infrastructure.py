"""The adapters a service's processes share, chosen by URL from its configuration: database
engine, cache, broker connections, and the readiness checks over all three."""

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine, Table

from service_kit.config import ServiceConfig
from service_kit.http.health import Check, Readiness
from service_kit.messaging.amqp import AmqpBroker
from service_kit.messaging.broker import Broker
from service_kit.messaging.hold_back import HoldBack
from service_kit.messaging.outbox import InboxPruner, OutboxBacklog, OutboxRelay, RelayLease
from service_kit.messaging.spool import SpoolBroker
from service_kit.messaging.unit_of_work import EventTables
from service_kit.storage.cache import SafeCache, open_cache
from service_kit.storage.db import create_engine_for, ping
from service_kit.storage.idempotency import KeyPruner


@dataclass
class Infrastructure:
    engine: Engine
    cache: SafeCache
    connect_broker: Callable[[], Broker]  # a new connection, for one thread

    def readiness_checks(self) -> dict[str, Check]:
        return {
            "database": lambda: ping(self.engine),
            "cache": self.cache.ping,
            "broker": self._ping_broker,
        }

    def readiness(self) -> Readiness:
        """What the public /ready answers: the checks, run every few seconds at most."""
        return Readiness(self.readiness_checks())

    def relay(self, tables: EventTables, hold_back: HoldBack | None = None) -> OutboxRelay:
        lease = RelayLease(self.engine, tables.relay_lease)
        return OutboxRelay(
            self.engine, tables.outbox, lease, self.connect_broker, hold_back=hold_back
        )

    def outbox_backlog(self, outbox: Table) -> OutboxBacklog:
        return OutboxBacklog(self.engine, outbox)

    def inbox_pruner(self, inbox: Table, retention_s: float) -> InboxPruner:
        return InboxPruner(self.engine, inbox, retention_s=retention_s)

    def key_pruner(self, keys: Table, ttl_s: float) -> KeyPruner:
        return KeyPruner(self.engine, keys, ttl_s=ttl_s)

    def _ping_broker(self) -> None:
        broker = self.connect_broker()
        try:
            broker.ping()
        finally:
            broker.close()


def open_broker(url: str, owner: str | None = None) -> Broker:
    """`amqp://…` is RabbitMQ (`owner`'s queues declared); a `sqlite:///…` URL is the local
    durable spool, no server."""
    if url.startswith(("amqp://", "amqps://")):
        return AmqpBroker(url, owner)
    return SpoolBroker(url)


def open_infrastructure(config: ServiceConfig, *, namespace: str) -> Infrastructure:
    return Infrastructure(
        engine=create_engine_for(
            config.database_url, pool_size=config.db_pool_size, name=namespace
        ),
        cache=open_cache(config.redis_url, namespace=namespace, file_dir=config.cache_dir),
        connect_broker=lambda: open_broker(config.broker_url, f"{namespace}-service"),
    )
