"""RabbitMQ definitions for a deployment, from asyncapi/events.yaml: the topology, and one user
per service allowed what its part of the contract says and nothing more. It may publish only
its own event types, declare and read only its own queues (and dead letters); the exchanges
are declared here, by the broker, which no service may configure. The users have no password here;
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
    configure (declare, delete) its own queues and nothing else, not even an exchange; write
    (publish, bind a queue) to the exchange, its own dead-letter exchange and queues; read
    (consume, bind to an exchange) the queues it consumes, the exchange (for the routing keys
    its topic permissions allow) and its own dead-letter exchange: no dead letters at all."""
    consumed = [_literal(queue) for queue in events.queues_of(service)]
    queues = [
        _literal(name)
        for queue in events.queues_of(service)
        for name in (queue, events.dead_letter_queue(queue))
    ]
    exchanges = [_literal(events.EXCHANGE), *map(_literal, events.dead_letter_exchanges(service))]
    return {
        "configure": _any_of(*queues),
        "write": _any_of(*exchanges, *queues),
        "read": _any_of(*exchanges, *consumed),  # its dead letters are the operator's to read
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
            *(_exchange(vhost, name, "direct") for name in events.dead_letter_exchanges()),
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
            _binding(
                vhost, events.dead_letter_exchange(queue), events.dead_letter_queue(queue), queue
            )
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
