"""The users `infra/` gives each service on MySQL, Redis and RabbitMQ, recreated on this
machine's servers from the same files (renamed for one run, in throw-away databases and a
throw-away virtual host), so that tests run the services with exactly those rights."""

import json
import re
import secrets
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pymysql
import redis
import yaml

from devstack import throwaway
from service_kit.storage.migrations import upgrade_to_head

INFRA = Path(__file__).resolve().parent.parent / "infra"
SERVICES = {"product": "product-service", "order": "order-service"}
_DATABASES = {"product": "products", "order": "orders"}  # as infra/mysql/init.sh names them


def mysql_grants() -> dict[str, tuple[str, str]]:
    """infra/mysql/init.sh's grants: user → (privileges, database)."""
    script = (INFRA / "mysql/init.sh").read_text()
    grants = re.findall(r"^GRANT (.+) ON (\w+)\.\* TO '([\w-]+)'@'%';$", script, re.MULTILINE)
    return {user: (privileges, database) for privileges, database, user in grants}


def redis_rules() -> dict[str, list[str]]:
    """The compose file's Redis users: name → ACL rules (the default user's included)."""
    compose = yaml.safe_load((INFRA / "docker-compose.yml").read_text())
    command = compose["services"]["redis"]["command"]
    users: dict[str, list[str]] = {}
    for index, word in enumerate(command):
        if word == "--user":
            rules = []
            for rule in command[index + 2 :]:
                if rule.startswith("--"):
                    break
                rules.append(rule)
            users[command[index + 1]] = rules
    return users


def broker_definitions() -> dict[str, Any]:
    return json.loads((INFRA / "rabbitmq/definitions.json").read_text())


@contextmanager
def service_users() -> Iterator[dict[str, str]]:
    """The environment that runs both services as infra/'s users: their own migrated database,
    Redis user and RabbitMQ user each."""
    run = uuid.uuid4().hex[:8]
    with ExitStack() as stack:
        try:
            env = stack.enter_context(_mysql_users(run))
            env |= stack.enter_context(_redis_users(run))
            env |= stack.enter_context(_rabbitmq_users(run))
        except (pymysql.err.OperationalError, redis.RedisError, OSError) as exc:
            raise throwaway.Unavailable(f"cannot create the services' users: {exc!r}") from exc
        except subprocess.SubprocessError as exc:
            raise throwaway.Unavailable(f"no rabbitmqctl: {exc!r}") from exc
        yield env


def _rabbitmqctl(*arguments: str) -> str:
    return subprocess.run(
        ["rabbitmqctl", "-q", *arguments], check=True, capture_output=True, text=True, timeout=60
    ).stdout


@contextmanager
def _mysql_users(run: str) -> Iterator[dict[str, str]]:
    admin = throwaway.mysql_admin()
    grants = mysql_grants()
    names = {service: f"test_{service}_{run}" for service in SERVICES}
    users = {service: f"{user}-{run}" for service, user in SERVICES.items()}
    password = secrets.token_urlsafe(16)
    host = f"{throwaway.MYSQL_HOST}:{throwaway.MYSQL_PORT}"
    try:
        with admin.cursor() as cursor:
            for service, user in SERVICES.items():
                privileges, database = grants[user]
                assert database == _DATABASES[service], (user, database)
                cursor.execute(f"CREATE DATABASE `{names[service]}` CHARACTER SET utf8mb4")
                cursor.execute(f"CREATE USER '{users[service]}'@'%' IDENTIFIED BY '{password}'")
                cursor.execute(
                    f"GRANT {privileges} ON `{names[service]}`.* TO '{users[service]}'@'%'"
                )
        urls = {
            service: f"mysql+pymysql://{users[service]}:{password}@{host}/{names[service]}"
            for service in SERVICES
        }
        for service, url in urls.items():  # as the service's own user, as in infra/
            upgrade_to_head(throwaway.MIGRATIONS[service], url)
        yield {f"{service.upper()}_DATABASE_URL": url for service, url in urls.items()}
    finally:
        with admin.cursor() as cursor:
            for service in SERVICES:
                cursor.execute(f"DROP USER IF EXISTS '{users[service]}'@'%'")
                cursor.execute(f"DROP DATABASE IF EXISTS `{names[service]}`")
        admin.close()


@contextmanager
def _redis_users(run: str) -> Iterator[dict[str, str]]:
    url = throwaway.redis_database()
    admin = redis.Redis.from_url(url)
    password = secrets.token_urlsafe(16)
    names = {service: f"{user}-{run}" for service, user in SERVICES.items()}
    rules = redis_rules()
    try:
        for service, user in SERVICES.items():
            own = [f">{password}" if rule.startswith(">") else rule for rule in rules[user]]
            admin.acl_setuser(names[service], reset=True)
            admin.execute_command("ACL", "SETUSER", names[service], *own)
        base = url.removeprefix("redis://")
        yield {
            f"{service.upper()}_REDIS_URL": f"redis://{names[service]}:{password}@{base}"
            for service in SERVICES
        }
    finally:
        for name in names.values():
            admin.acl_deluser(name)
        admin.close()


@contextmanager
def _rabbitmq_users(run: str) -> Iterator[dict[str, str]]:
    vhost = f"test-{run}"
    names = {user: f"{user}-{run}" for user in SERVICES.values()}
    definitions = broker_definitions()
    for entry in definitions["vhosts"]:
        entry["name"] = vhost
    for kind in ("permissions", "topic_permissions", "exchanges", "queues", "bindings"):
        for entry in definitions[kind]:
            entry["vhost"] = vhost
            if "user" in entry:
                entry["user"] = names[entry["user"]]
    for entry in definitions["users"]:
        entry["name"] = names[entry["name"]]
    password = secrets.token_urlsafe(16)
    try:
        file = Path(tempfile.gettempdir()) / f"definitions-{run}.json"
        file.write_text(json.dumps(definitions))
        try:
            _rabbitmqctl("import_definitions", str(file))
        finally:
            file.unlink()
        _wait_for_import(vhost, len(definitions["bindings"]), list(names.values()))
        for name in names.values():
            _rabbitmqctl("change_password", name, password)
        yield {
            f"{service.upper()}_BROKER_URL": (
                f"amqp://{names[user]}:{password}@{throwaway.RABBITMQ_HOST}:5672/{vhost}"
            )
            for service, user in SERVICES.items()
        }
    finally:
        subprocess.run(
            ["rabbitmqctl", "-q", "delete_vhost", vhost], capture_output=True, timeout=60
        )
        for name in names.values():
            subprocess.run(
                ["rabbitmqctl", "-q", "delete_user", name], capture_output=True, timeout=60
            )


def _wait_for_import(vhost: str, bindings: int, users: list[str]) -> None:
    """`import_definitions` returns before it is done."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        imported_users = _rabbitmqctl("list_topic_permissions", "-p", vhost, "--no-table-headers")
        imported_bindings = _rabbitmqctl(
            "list_bindings", "-p", vhost, "source_name", "--no-table-headers"
        )
        queue_bindings = [line for line in imported_bindings.splitlines() if line.strip()]
        if all(user in imported_users for user in users) and len(queue_bindings) >= bindings:
            return
        time.sleep(0.2)
    raise TimeoutError(f"RabbitMQ did not import the definitions into {vhost} within 30 s")
