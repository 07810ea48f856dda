"""Alembic, driven from code: each service keeps its revisions in `<service>/migrations` and
calls `upgrade_to_head` at start-up (`make run`) and in tests."""

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData

from service_kit.storage.db import create_engine_for


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
