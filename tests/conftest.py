"""Shared fixtures: every backend the services support.

`backend` runs a test on the embedded defaults (SQLite files, file cache, local spool) and on
the real MariaDB, Redis and RabbitMQ of this machine, in throw-away databases / vhost created for
the run. Without a reachable server the real case is skipped, unless REQUIRE_INFRA=1 (as in CI),
where it fails instead."""

import collections
import functools
import json
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

import fastjsonschema
import pytest

from devstack import throwaway
from service_kit.messaging import events, outbox
from service_kit.messaging.events import Event


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


# For a fixture of wider scope than `backend`'s (a module's shared stack).
BACKENDS = ["sqlite", pytest.param("mariadb", marks=pytest.mark.integration)]


@pytest.fixture(params=["sqlite", "mariadb"])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "mariadb":
        request.applymarker(pytest.mark.integration)
    return request.param


@pytest.fixture
def database_urls(backend: str, request: pytest.FixtureRequest, tmp_path) -> dict[str, str]:
    """Migrated database URLs for both services on the chosen backend."""
    return backend_database_urls(backend, request, tmp_path)


@pytest.fixture
def service_env(backend: str, database_urls, request: pytest.FixtureRequest, tmp_path) -> dict:
    """Environment for both services on the chosen backend."""
    return backend_env(backend, database_urls, request, tmp_path)


def backend_database_urls(backend: str, request: pytest.FixtureRequest, folder) -> dict[str, str]:
    if backend == "mariadb":
        return request.getfixturevalue("mysql_databases")
    return throwaway.sqlite_databases(folder)


def backend_env(backend: str, database_urls, request: pytest.FixtureRequest, folder) -> dict:
    env = throwaway.embedded_env(folder, database_urls)
    if backend == "mariadb":
        env["REDIS_URL"] = request.getfixturevalue("redis_url")
        env["BROKER_URL"] = request.getfixturevalue("rabbitmq_url")
    return env


class OutboxChecks:
    """Every event written to an outbox in this test process, checked against its message in
    asyncapi/events.yaml, and its type against the send operations of the service writing it."""

    def __init__(self) -> None:
        self.checked: collections.Counter[str] = collections.Counter()
        self.violations: list[str] = []

    def check(self, event: Event, body: str) -> None:
        self.checked[event.type] += 1
        service = _writing_service()
        if service is not None and event.type not in events.publishers()[service]:
            self.violations.append(f"{service} wrote {event.type}, not one of its send operations")
        if event.type not in events.messages():
            self.violations.append(f"{event.type}: no message in the contract")
            return
        try:
            _event_validator(event.type)(json.loads(body))
        except fastjsonschema.JsonSchemaException as exc:
            self.violations.append(f"{event.type} {body[:300]}: {exc.message}")


@functools.cache
def _event_validator(event_type: str) -> Callable[[Any], Any]:
    return fastjsonschema.compile(events.event_schema(event_type), formats=events.FORMATS)


_SERVICES = {"product_service": "product-service", "order_service": "order-service"}


def _writing_service() -> str | None:
    """The service whose code is writing (the nearest of its frames on the stack), if any."""
    frame = sys._getframe(2)
    while frame is not None:
        package = frame.f_globals.get("__name__", "").partition(".")[0]
        if package in _SERVICES:
            return _SERVICES[package]
        frame = frame.f_back
    return None


OUTBOX_CHECKS = OutboxChecks()


@pytest.fixture(scope="session", autouse=True)
def _outbox_rows_checked() -> Iterator[None]:
    """Outbox rows are made by outbox.row_of only (the unit of work's append, order-service's
    group commit): checked there, in the tests only, so the services pay nothing for it."""
    original = outbox.row_of

    def checked_row_of(event: Event) -> dict[str, str]:
        row = original(event)
        OUTBOX_CHECKS.check(event, row["body"])
        return row

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(outbox, "row_of", checked_row_of)
        yield


@pytest.fixture(autouse=True)
def _outbox_events_valid(_outbox_rows_checked: None) -> Iterator[None]:
    """A test fails when an event it caused to be written breaks the contract."""
    before = len(OUTBOX_CHECKS.violations)
    yield
    new = OUTBOX_CHECKS.violations[before:]
    assert not new, "outbox events outside asyncapi/events.yaml:\n" + "\n".join(new[:10])


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if OUTBOX_CHECKS.checked:
        counts = ", ".join(f"{t} {n}" for t, n in sorted(OUTBOX_CHECKS.checked.items()))
        terminalreporter.write_line(
            f"outbox events validated against asyncapi/events.yaml: "
            f"{OUTBOX_CHECKS.checked.total()} ({counts})"
        )
