"""RabbitMQ definitions for a deployment, from asyncapi/events.yaml: the topology, and one user
per service allowed what its part of the contract says and nothing more. It may publish only
its own event types, declare and read only its own queues. The users have no password here;
the deployment sets them (infra/rabbitmq/start.sh).

    python -m service_kit.messaging.broker_definitions > infra/rabbitmq/definitions.json
"""

import json
from typing import Any

from service_kit.messaging import events
from service_kit.messaging.amqp import queue_arguments


def _literal(name: str) -> str:
    """A queue, exchange or routing key name as a regular expression matching just it."""
    return name.replace(".", r"\.").replace("*", r"\*")


def _any_of(*alternatives: str) -> str:
    return "^(" + "|".join(alternatives) + ")$"


def permissions(service: str) -> dict[str, str]:
    """What `service`'s user may do with exchanges and queues (RabbitMQ's regular expressions):
    declare and bind its own queues, publish to the exchange (and dead letters, with their
    reason), consume its own queues."""
    own = _literal(service) + r"\..+"
    exchange, dead_letters = _literal(events.EXCHANGE), _literal(events.DEAD_LETTER_EXCHANGE)
    return {
        "configure": _any_of(exchange, dead_letters, own),
        "write": _any_of(exchange, dead_letters, own),
        "read": _any_of(exchange, dead_letters, own),
    }


def topic_permissions(service: str) -> dict[str, str]:
    """Which routing keys `service`'s user may publish, and bind its queues to."""
    bound = sorted({key for keys in events.queues_of(service).values() for key in keys})
    return {
        "write": _any_of(*map(_literal, events.publishers()[service])),
        "read": _any_of(*map(_literal, bound)),
    }


def definitions(vhost: str = "/") -> dict[str, Any]:
    services = list(events.publishers())
    queues = events.queues()
    return {
        "vhosts": [{"name": vhost}],
        "users": [
            {
                "name": service,
                "password_hash": "",  # none: no login until the deployment sets one
                "hashing_algorithm": "rabbit_password_hashing_sha256",
                "tags": [],
            }
            for service in services
        ],
        "permissions": [
            {"user": service, "vhost": vhost, **permissions(service)} for service in services
        ],
        "topic_permissions": [
            {
                "user": service,
                "vhost": vhost,
                "exchange": events.EXCHANGE,
                **topic_permissions(service),
            }
            for service in services
        ],
        "exchanges": [
            _exchange(vhost, events.EXCHANGE, "topic"),
            _exchange(vhost, events.DEAD_LETTER_EXCHANGE, "direct"),
        ],
        "queues": [
            _queue(vhost, name, queue_arguments(name))
            for queue in queues
            for name in (queue, events.dead_letter_queue(queue))
        ],
        "bindings": [
            _binding(vhost, events.EXCHANGE, queue, key)
            for queue, keys in queues.items()
            for key in keys
        ]
        + [
            _binding(vhost, events.DEAD_LETTER_EXCHANGE, events.dead_letter_queue(queue), queue)
            for queue in queues
        ],
    }


def _exchange(vhost: str, name: str, kind: str) -> dict[str, Any]:
    return {
        "name": name,
        "vhost": vhost,
        "type": kind,
        "durable": True,
        "auto_delete": False,
        "internal": False,
        "arguments": {},
    }


def _queue(vhost: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "vhost": vhost,
        "durable": True,
        "auto_delete": False,
        "arguments": arguments,
    }


def _binding(vhost: str, exchange: str, queue: str, key: str) -> dict[str, Any]:
    return {
        "source": exchange,
        "vhost": vhost,
        "destination": queue,
        "destination_type": "queue",
        "routing_key": key,
        "arguments": {},
    }


def main() -> None:
    print(json.dumps(definitions(), indent=2))


if __name__ == "__main__":
    main()
