"""A broker outage, as a worker's consumer lives it (the real RabbitMQ, cut and restored by a
TCP proxy): one warning when the broker is lost, naming the back-off, one when it is back with
the number of attempts; nothing from pika, and no traceback, however long the outage."""

import logging
import threading
import time
from urllib.parse import urlsplit, urlunsplit

import pytest

from service_kit import logs
from service_kit.messaging.amqp import AmqpBroker
from service_kit.messaging.consumer import consume
from tests.e2e.tcp_proxy import TcpProxy

QUEUE = "order-service.order-created-log"

pytestmark = pytest.mark.integration


def test_an_outage_is_one_line_when_lost_and_one_when_back(rabbitmq_url, caplog):
    parts = urlsplit(rabbitmq_url)
    proxy = TcpProxy(parts.hostname, parts.port)
    proxied = urlunsplit(
        parts._replace(netloc=parts.netloc.replace(f":{parts.port}", f":{proxy.port}"))
    )
    logs.configure("INFO")  # the workers' own logging set-up, pika's loggers included
    logging.getLogger().addHandler(caplog.handler)  # which that set-up took off the root
    stop = threading.Event()
    consumer = threading.Thread(
        target=consume,
        args=(lambda: AmqpBroker(proxied, "order-service"), QUEUE, lambda events: None, stop),
        kwargs={"wait_s": 0.05},
    )
    consumer.start()
    try:
        time.sleep(1)  # connected and consuming
        proxy.cut()
        time.sleep(4)  # attempts at 0.2, 0.4, 0.8, 1.6 s: several failures
        proxy.restore()
        deadline = time.monotonic() + 15
        while "reachable again" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        logging.getLogger().removeHandler(caplog.handler)
        stop.set()
        consumer.join(timeout=10)
        proxy.close()
    said = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert [r for r in said if r.name.startswith("pika")] == []
    assert [r for r in said if r.exc_info] == []
    ours = [r.getMessage() for r in said if r.name == "service_kit.messaging.consumer"]
    lost = [m for m in ours if "broker unavailable" in m]
    back = [m for m in ours if "reachable again" in m]
    assert len(lost) == 1 and "retrying in 0.2s, then at most every 5s" in lost[0], ours
    assert len(back) == 1 and "after " in back[0] and "failed attempts" in back[0], ours
    attempts = int(back[0].split("after ")[1].split()[0])
    assert attempts >= 3
