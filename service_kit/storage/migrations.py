"""Alembic, driven from code: each service keeps its revisions in `<service>/migrations` and
calls `upgrade_to_head` at start-up (`make run`) and in tests."""

import sys
import time

from alembic import command, context
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData
from sqlalchemy.exc import DBAPIError

from service_kit.config import redacted
from service_kit.storage.db import create_engine_for, exit_unless_reachable, unreachable_reason


def upgrade_to_head(script_location: str, database_url: str) -> None:
    config = Config()
    config.set_main_option("script_location", script_location)
    config.attributes["database_url"] = database_url
    command.upgrade(config, "head")


def is_at_head(script_location: str, database_url: str) -> bool:
    """Whether the database's schema is the newest revision (what a new pod waits for while
    the migration Job of its rollout runs)."""
    config = Config()
    config.set_main_option("script_location", script_location)
    heads = set(ScriptDirectory.from_config(config).get_heads())
    engine = create_engine_for(database_url, pool_size=1)
    try:
        with engine.connect() as connection:
            return set(MigrationContext.configure(connection).get_current_heads()) == heads
    finally:
        engine.dispose()


def migrate_main(script_location: str, database_url: str, argv: list[str]) -> None:
    """A service's `python -m <service>.migrate`: upgrades to the newest revision; with
    `--check`, changes nothing and exits 1 unless the schema is already there; with `--wait N`,
    waits up to N seconds for it (what a new pod's init container does while its rollout's
    migration Job runs: one interpreter, not one per attempt), then exits 1 saying why."""
    waiting = len(argv) == 2 and argv[0] == "--wait" and argv[1].isdigit()
    if argv not in ([], ["--check"]) and not waiting:
        raise SystemExit(
            f"usage: python -m <service>.migrate [--check | --wait SECONDS]; not {argv}"
        )
    if waiting:
        wait_for_head(script_location, database_url, float(argv[1]))
        return
    exit_unless_reachable(database_url, script_location.replace(":", "."))
    if argv == ["--check"]:
        if not is_at_head(script_location, database_url):
            print(f"{script_location}: the schema is not at the newest revision", file=sys.stderr)
            raise SystemExit(1)
        return
    upgrade_to_head(script_location, database_url)


def wait_for_head(script_location: str, database_url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    why = "the schema is not at the newest revision"
    while True:
        try:
            if is_at_head(script_location, database_url):
                return
            why = "the schema is not at the newest revision"
        except DBAPIError as exc:
            why = f"database {redacted(database_url)} unreachable: {unreachable_reason(exc)}"
        if time.monotonic() >= deadline:
            print(f"{script_location}: after {timeout_s:.0f}s, {why}", file=sys.stderr)
            raise SystemExit(1)
        time.sleep(2)


def run_env(target_metadata: MetaData) -> None:
    """Body of a service's migrations/env.py (online mode only: we always have a URL)."""
    url = context.config.attributes["database_url"]
    engine = create_engine_for(url, pool_size=1)
    try:
        with engine.connect() as connection:
            context.configure(connection=connection, target_metadata=target_metadata)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()
