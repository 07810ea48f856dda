"""Shared fixtures: every backend the services support.

`backend` runs a test on the embedded defaults (SQLite files, file cache, local spool) and on
the real MariaDB, Redis and RabbitMQ of this machine, in throw-away databases / vhost created for
the run. Without a reachable server the real case is skipped, unless REQUIRE_INFRA=1 (as in CI),
where it fails instead."""

import os
from collections.abc import Iterator

import pytest

from devstack import throwaway


def infra_required() -> bool:
    return os.environ.get("REQUIRE_INFRA") == "1"


def _absent(message: str) -> None:
    if infra_required():
        pytest.fail(message + " (REQUIRE_INFRA=1)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def mysql_databases() -> Iterator[dict[str, str]]:
    try:
        with throwaway.mysql_databases() as urls:
            yield urls
    except throwaway.Unavailable as exc:
        _absent(str(exc))


@pytest.fixture(scope="session")
def redis_url() -> str:
    try:
        return throwaway.redis_database()
    except throwaway.Unavailable as exc:
        _absent(str(exc))


@pytest.fixture(scope="session")
def rabbitmq_url() -> Iterator[str]:
    try:
        with throwaway.rabbitmq_vhost() as url:
            yield url
    except throwaway.Unavailable as exc:
        _absent(str(exc))


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
    return throwaway.sqlite_databases(tmp_path)


@pytest.fixture
def service_env(backend: str, database_urls, request: pytest.FixtureRequest, tmp_path) -> dict:
    """Environment for both services on the chosen backend."""
    env = throwaway.embedded_env(tmp_path, database_urls)
    if backend == "mariadb":
        env["REDIS_URL"] = request.getfixturevalue("redis_url")
        env["BROKER_URL"] = request.getfixturevalue("rabbitmq_url")
    return env
