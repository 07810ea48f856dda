"""Alembic, driven from code: each service keeps its revisions in `<service>/migrations` and
calls `upgrade_to_head` at start-up (`make run`) and in tests."""

from typing import Any

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData

from service_kit.db import create_engine_for
from service_kit.outbox import inbox_table, outbox_table


def upgrade_to_head(script_location: str, database_url: str) -> None:
    config = Config()
    config.set_main_option("script_location", script_location)
    config.attributes["database_url"] = database_url
    command.upgrade(config, "head")


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


def create_event_tables(op: Any) -> None:
    """The outbox and inbox tables (see `service_kit.outbox`), for a service's migration."""
    metadata = MetaData()
    for table in (outbox_table(metadata), inbox_table(metadata)):
        table.create(bind=op.get_bind())


def index_inbox_by_time(op: Any) -> None:
    """The index the inbox pruner deletes by (see `service_kit.outbox.InboxPruner`)."""
    op.create_index("ix_inbox_processedAt", "inbox", ["processedAt"])
