"""products.id never reused on SQLite (AUTOINCREMENT); nothing to do on MariaDB/MySQL

Revision ID: 0007
Revises: 0006
"""

from service_kit.storage.sqlite_autoincrement import (
    recreate_with_autoincrement,
    recreate_without_autoincrement,
)

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    recreate_with_autoincrement("products")


def downgrade() -> None:
    recreate_without_autoincrement("products")
