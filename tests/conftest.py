"""Shared fixtures: database URLs for every backend the services support.

`backend` runs a test on the embedded default (a SQLite file) and on the real MariaDB/MySQL of
this machine, in a throw-away database created for the run. Without a reachable server the
MariaDB case is skipped, unless REQUIRE_INFRA=1 (as in CI), where it fails instead."""

import os
import uuid
from collections.abc import Iterator

import pymysql
import pytest

from service_kit.migrations import upgrade_to_head

MYSQL_HOST = os.environ.get("TEST_MYSQL_HOST", "127.0.0.1")
MYSQL_PORT = int(os.environ.get("TEST_MYSQL_PORT", "3306"))
MYSQL_USER = os.environ.get("TEST_MYSQL_USER", "root")
MYSQL_PASSWORD = os.environ.get("TEST_MYSQL_PASSWORD", "")
MIGRATIONS = {"product": "product_service:migrations", "order": "order_service:migrations"}


def infra_required() -> bool:
    return os.environ.get("REQUIRE_INFRA") == "1"


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
        message = f"no MariaDB/MySQL at {MYSQL_HOST}:{MYSQL_PORT}: {exc}"
        if infra_required():
            pytest.fail(message + " (REQUIRE_INFRA=1)")
        pytest.skip(message)
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
