"""Throw-away infrastructure for one run, on the real servers of this machine: databases per
service (migrated), a RabbitMQ virtual host, an emptied Redis database. Used by the pytest
fixtures and by the contract-test runner."""

import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pika
import pymysql
import redis

from service_kit.config import auth_settings
from service_kit.http.dev_tokens import every_scope, mint, write_signing_key
from service_kit.storage.migrations import upgrade_to_head

MYSQL_HOST = os.environ.get("TEST_MYSQL_HOST", "127.0.0.1")
MYSQL_PORT = int(os.environ.get("TEST_MYSQL_PORT", "3306"))
MYSQL_USER = os.environ.get("TEST_MYSQL_USER", "root")
MYSQL_PASSWORD = os.environ.get("TEST_MYSQL_PASSWORD", "")
REDIS_TEST_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
RABBITMQ_HOST = os.environ.get("TEST_RABBITMQ_HOST", "127.0.0.1")
MIGRATIONS = {"product": "product_service:migrations", "order": "order_service:migrations"}


class Unavailable(Exception):
    """The server is not there."""


def mysql_server_url() -> str:
    """The test server's URL, without a database."""
    return f"mysql+pymysql://{MYSQL_USER}:{MYSQL_PASSWORD}@{MYSQL_HOST}:{MYSQL_PORT}"


def mysql_admin() -> pymysql.connections.Connection:
    return pymysql.connect(
        host=MYSQL_HOST,
        port=MYSQL_PORT,
        user=MYSQL_USER,
        password=MYSQL_PASSWORD,
        connect_timeout=3,
        autocommit=True,
    )


@contextmanager
def mysql_databases() -> Iterator[dict[str, str]]:
    """One migrated database per service, dropped afterwards."""
    try:
        admin = mysql_admin()
    except pymysql.err.OperationalError as exc:
        raise Unavailable(f"no MariaDB/MySQL at {MYSQL_HOST}:{MYSQL_PORT}: {exc}") from exc
    run = uuid.uuid4().hex[:8]
    names = {service: f"test_{service}_{run}" for service in MIGRATIONS}
    server = mysql_server_url()
    try:
        with admin.cursor() as cursor:
            for name in names.values():
                cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        urls = {service: f"{server}/{name}" for service, name in names.items()}
        for service, url in urls.items():
            upgrade_to_head(MIGRATIONS[service], url)
        yield urls
    finally:
        with admin.cursor() as cursor:
            for name in names.values():
                cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


def redis_database() -> str:
    """The real Redis, in a database of its own, emptied."""
    try:
        redis.Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=2).flushdb()
    except redis.RedisError as exc:
        raise Unavailable(f"no Redis at {REDIS_TEST_URL}: {exc}") from exc
    return REDIS_TEST_URL


@contextmanager
def rabbitmq_vhost() -> Iterator[str]:
    """A RabbitMQ virtual host of its own (no message of another run can reach this one's
    workers), deleted afterwards."""
    vhost = f"test-{uuid.uuid4().hex[:8]}"
    try:
        pika.BlockingConnection(pika.ConnectionParameters(RABBITMQ_HOST, socket_timeout=2)).close()
        for command in (
            ["add_vhost", vhost],
            ["set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
        ):
            subprocess.run(
                ["rabbitmqctl", "-q", *command], check=True, capture_output=True, timeout=60
            )
    except (pika.exceptions.AMQPError, OSError, subprocess.SubprocessError) as exc:
        raise Unavailable(
            f"no RabbitMQ at {RABBITMQ_HOST}:5672 (or no rabbitmqctl): {exc!r}"
        ) from exc
    try:
        yield f"amqp://guest:guest@{RABBITMQ_HOST}:5672/{vhost}"
    finally:
        subprocess.run(
            ["rabbitmqctl", "-q", "delete_vhost", vhost], capture_output=True, timeout=60
        )


def sqlite_databases(folder: Path) -> dict[str, str]:
    """The embedded default: one migrated SQLite file per service in `folder`."""
    urls = {service: f"sqlite:///{folder}/{service}.db" for service in MIGRATIONS}
    for service, url in urls.items():
        upgrade_to_head(MIGRATIONS[service], url)
    return urls


def embedded_env(folder: Path, database_urls: dict[str, str]) -> dict[str, str]:
    write_signing_key(folder / "jwks.json")
    return {
        "AUTH_JWKS_FILE": str(folder / "jwks.json"),
        "PRODUCT_DATABASE_URL": database_urls["product"],
        "ORDER_DATABASE_URL": database_urls["order"],
        "CACHE_DIR": str(folder / "cache"),
        "BROKER_URL": f"sqlite:///{folder}/events.db",
        # Every quota raised out of the way: the tests of other features and the benchmarks send
        # more than a client may (tests/integration/test_rate_limits.py sets its own).
        "RATE_LIMIT_FACTOR": "1000",
        # Events applied at once: the tests time a lone order's events on a machine that the
        # tests themselves keep busy (tests/unit/test_hold_back.py builds its own; the
        # benchmarks use the default, devstack/real_stack.py).
        **{f"{service}_WORKER_HOLD_BACK_S": "0" for service in ("PRODUCT", "ORDER")},
    }


def bearer(
    env: dict[str, str], scopes: list[str] | None = None, *, subject: str = "developer"
) -> dict[str, str]:
    """An Authorization header for the stack `env` configures: every scope unless told."""
    token = mint(auth_settings(env), every_scope() if scopes is None else scopes, subject=subject)
    return {"Authorization": f"Bearer {token}"}
