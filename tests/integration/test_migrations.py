"""`python -m <service>.migrate --check`: what a new pod waits on while its rollout's migration
Job runs (infra/k8s), on SQLite and MariaDB."""

import pytest
from sqlalchemy import text

from service_kit.storage.db import create_engine_for
from service_kit.storage.migrations import migrate_main

ORDERS = "order_service:migrations"


def test_check_says_whether_the_schema_is_at_the_newest_revision(database_urls):
    url = database_urls["order"]  # migrated to the newest revision by the fixture
    migrate_main(ORDERS, url, ["--check"])
    engine = create_engine_for(url, pool_size=1)
    with engine.begin() as connection:
        (before,) = connection.execute(text("SELECT version_num FROM alembic_version")).one()
        connection.execute(text("UPDATE alembic_version SET version_num = '0004'"))
    try:
        with pytest.raises(SystemExit) as refused:
            migrate_main(ORDERS, url, ["--check"])
        assert refused.value.code == 1
    finally:
        with engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": before})
        engine.dispose()
    migrate_main(ORDERS, url, ["--check"])
    with pytest.raises(SystemExit, match="usage"):
        migrate_main(ORDERS, url, ["--frobnicate"])
