"""How many outbox events per second the relay publishes to RabbitMQ, durably.

Fills an order-service outbox on the real MariaDB with N `order.created` events, then lets one
relay publish them (persistent messages in packs, one AMQP transaction per batch) into a
throw-away virtual host, and prints events/s and the relay's CPU per event.

    make bench-relay            # N=20000
    .venv/bin/python perf/relay_benchmark.py --events 50000 --batch 500   # default: the relay's
"""

import argparse
import decimal
import subprocess
import time
import uuid

import pika
import pymysql

from order_service.repository import event_tables
from service_kit.messaging.events import new_event, read_message
from service_kit.messaging.outbox import RELAY_BATCH_SIZE, OutboxRelay, RelayLease
from service_kit.process.infrastructure import open_broker
from service_kit.storage.db import create_engine_for
from service_kit.storage.migrations import upgrade_to_head

MYSQL = "mysql+pymysql://root:@127.0.0.1:3306"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=RELAY_BATCH_SIZE)
    args = parser.parse_args()

    run = uuid.uuid4().hex[:8]
    database, vhost = f"bench_relay_{run}", f"bench-relay-{run}"
    admin = pymysql.connect(host="127.0.0.1", user="root", autocommit=True)
    admin.cursor().execute(f"CREATE DATABASE `{database}`")
    for command in (
        ["add_vhost", vhost],
        ["set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
    ):
        subprocess.run(["rabbitmqctl", "-q", *command], check=True, capture_output=True)
    try:
        url = f"{MYSQL}/{database}"
        upgrade_to_head("order_service:migrations", url)
        engine = create_engine_for(url)
        outbox = event_tables.outbox
        rows = []
        for i in range(args.events):
            event = new_event(
                "order.created",
                {
                    "id": i + 1,
                    "productId": 1 + i % 50,
                    "qty": 1,
                    "totalPrice": decimal.Decimal("9.99"),
                    "status": "PENDING",
                    "createdAt": "2026-11-21T10:00:00Z",
                },
            )
            rows.append({"eventId": event.id, "type": event.type, "body": event.to_json()})
        with engine.begin() as connection:
            connection.execute(outbox.insert(), rows)

        broker_url = f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
        lease = RelayLease(engine, event_tables.relay_lease)
        relay = OutboxRelay(
            engine, outbox, lease, lambda: open_broker(broker_url), batch_size=args.batch
        )
        broker = open_broker(broker_url)
        started, cpu_started = time.perf_counter(), time.process_time()
        published = 0
        while sent := relay.relay_once(broker):
            published += sent
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        broker.close()

        messages, queued = events_in_queue(broker_url, "product-service.order-created")
        print(f"events published      {published}")
        print(f"in product's queue    {queued} (in {messages} messages)")
        print(f"batch size            {args.batch}")
        print(f"wall time             {seconds:.2f} s")
        print(f"throughput            {published / seconds:,.0f} events/s")
        print(f"relay CPU per event   {cpu / published * 1e6:.0f} µs")
        assert queued == published, "events lost between the outbox and the queue"
    finally:
        admin.cursor().execute(f"DROP DATABASE IF EXISTS `{database}`")
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], capture_output=True)


def events_in_queue(broker_url: str, queue: str) -> tuple[int, int]:
    """How many messages the queue holds, and how many valid events they carry (it is emptied)."""
    connection = pika.BlockingConnection(pika.URLParameters(broker_url))
    try:
        channel = connection.channel()
        messages = carried = 0
        while (message := channel.basic_get(queue, auto_ack=True))[0] is not None:
            events, problems = read_message(message[2], message[0].routing_key)
            assert not problems, problems[0]
            messages, carried = messages + 1, carried + len(events)
        return messages, carried
    finally:
        connection.close()


if __name__ == "__main__":
    main()
