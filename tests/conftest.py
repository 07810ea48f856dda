"""Shared fixtures: database URLs for every backend the services support.

`backend` runs a test on the embedded default (a SQLite file) and on the real MariaDB/MySQL of
this machine, in a throw-away database created for the run. Without a reachable server the
MariaDB case is skipped, unless REQUIRE_INFRA=1 (as in CI), where it fails instead."""

import os
import subprocess
import uuid
from collections.abc import Iterator

import pika
import pymysql
import pytest
import redis

from service_kit.migrations import upgrade_to_head

MYSQL_HOST = os.environ.get("TEST_MYSQL_HOST", "127.0.0.1")
MYSQL_PORT = int(os.environ.get("TEST_MYSQL_PORT", "3306"))
MYSQL_USER = os.environ.get("TEST_MYSQL_USER", "root")
MYSQL_PASSWORD = os.environ.get("TEST_MYSQL_PASSWORD", "")
MIGRATIONS = {"product": "product_service:migrations", "order": "order_service:migrations"}


REDIS_TEST_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
RABBITMQ_HOST = os.environ.get("TEST_RABBITMQ_HOST", "127.0.0.1")


def infra_required() -> bool:
    return os.environ.get("REQUIRE_INFRA") == "1"


def _absent(message: str) -> None:
    if infra_required():
        pytest.fail(message + " (REQUIRE_INFRA=1)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The real Redis, in a database of its own that is emptied for this run."""
    try:
        redis.Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=2).flushdb()
    except redis.RedisError as exc:
        _absent(f"no Redis at {REDIS_TEST_URL}: {exc}")
    return REDIS_TEST_URL


@pytest.fixture(scope="session")
def rabbitmq_url() -> Iterator[str]:
    """The real RabbitMQ, in a virtual host created for this run and deleted afterwards, so no
    message of another run can reach this one's workers."""
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
        _absent(f"no RabbitMQ at {RABBITMQ_HOST}:5672 (or no rabbitmqctl): {exc!r}")
    try:
        yield f"amqp://guest:guest@{RABBITMQ_HOST}:5672/{vhost}"
    finally:
        subprocess.run(
            ["rabbitmqctl", "-q", "delete_vhost", vhost], capture_output=True, timeout=60
        )


def _mysql_admin() -> pymysql.connections.Connection:
    return pymysql.connect(
        host=MYSQL_HOST,
        port=MYSQL_PORT,
        user=MYSQL_USER,
        password=MYSQL_PASSWORD,
        connect_timeout=3,
        autocommit=True,
    )


@pytest.fixture(scope="session")
def mysql_server() -> Iterator[str]:
    """A base URL (no database) of the real server, or a skip/failure when there is none."""
    try:
        _mysql_admin().close()
    except pymysql.err.OperationalError as exc:
        _absent(f"no MariaDB/MySQL at {MYSQL_HOST}:{MYSQL_PORT}: {exc}")
    yield f"mysql+pymysql://{MYSQL_USER}:{MYSQL_PASSWORD}@{MYSQL_HOST}:{MYSQL_PORT}"


@pytest.fixture(scope="session")
def mysql_databases(mysql_server: str) -> Iterator[dict[str, str]]:
    """One throw-away database per service for this test run, migrated; dropped afterwards."""
    run = uuid.uuid4().hex[:8]
    names = {service: f"test_{service}_{run}" for service in MIGRATIONS}
    admin = _mysql_admin()
    try:
        with admin.cursor() as cursor:
            for name in names.values():
                cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        urls = {service: f"{mysql_server}/{name}" for service, name in names.items()}
        for service, url in urls.items():
            upgrade_to_head(MIGRATIONS[service], url)
        yield urls
    finally:
        with admin.cursor() as cursor:
            for name in names.values():
                cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


@pytest.fixture(params=["sqlite", "mariadb"])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "mariadb":
        request.applymarker(pytest.mark.integration)
    return request.param


@pytest.fixture
def database_urls(backend: str, request: pytest.FixtureRequest, tmp_path) -> dict[str, str]:
    """Migrated database URLs for both services on the chosen backend."""
    if backend == "mariadb":
        return request.getfixturevalue("mysql_databases")
    urls = {service: f"sqlite:///{tmp_path}/{service}.db" for service in MIGRATIONS}
    for service, url in urls.items():
        upgrade_to_head(MIGRATIONS[service], url)
    return urls


@pytest.fixture
def service_env(backend: str, database_urls, request: pytest.FixtureRequest, tmp_path) -> dict:
    """Environment for both services: the embedded defaults (SQLite, file cache, local spool)
    in a temporary folder, or the real MariaDB, Redis and RabbitMQ of this machine."""
    env = {
        "PRODUCT_DATABASE_URL": database_urls["product"],
        "ORDER_DATABASE_URL": database_urls["order"],
        "CACHE_DIR": str(tmp_path / "cache"),
        "BROKER_URL": f"sqlite:///{tmp_path}/events.db",
    }
    if backend == "mariadb":
        env["REDIS_URL"] = request.getfixturevalue("redis_url")
        env["BROKER_URL"] = request.getfixturevalue("rabbitmq_url")
    return env
