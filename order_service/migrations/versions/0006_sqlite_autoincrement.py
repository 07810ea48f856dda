"""orders.id never reused on SQLite (AUTOINCREMENT); nothing to do on MariaDB/MySQL

Revision ID: 0006
Revises: 0005
"""

from service_kit.storage.sqlite_autoincrement import (
    recreate_with_autoincrement,
    recreate_without_autoincrement,
)

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    recreate_with_autoincrement("orders")


def downgrade() -> None:
    recreate_without_autoincrement("orders")
