"""The whole stack as `make run` starts it, on this machine's MariaDB (throw-away databases),
Redis (database 15) and RabbitMQ (a throw-away virtual host), with production settings (the
web metrics on ports of their own): the stack `make bench` and `make locust-stack` measure."""

import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from devstack import throwaway
from devstack.processes import RunningStack, running_stack

# Measured without gunicorn's line per request (its cost: docs/performance.md).
ACCESS_LOG = {"PRODUCT_ACCESS_LOG": "0", "ORDER_ACCESS_LOG": "0"}


@dataclass
class RealStack:
    services: RunningStack
    databases: dict[str, str]  # service → database URL


@contextmanager
def real_stack() -> Iterator[RealStack]:
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        databases = stack.enter_context(throwaway.mysql_databases())
        broker = stack.enter_context(throwaway.rabbitmq_vhost())
        env = throwaway.embedded_env(folder, databases)
        for service in ("PRODUCT", "ORDER"):  # the workers as make run starts them
            env.pop(f"{service}_WORKER_HOLD_BACK_S")
        env.update(REDIS_URL=throwaway.redis_database(), BROKER_URL=broker, **ACCESS_LOG)
        # Metrics on their own ports, as Kubernetes serves them: a scrape (make soak's, every
        # second) is the master's work, not a web worker's.
        services = stack.enter_context(
            running_stack(env, folder, validate_responses=False, metrics_ports=True)
        )
        yield RealStack(services, databases)
