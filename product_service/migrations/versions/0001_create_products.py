"""create products

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from service_kit.storage.db import Money, UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "products",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("price", Money(10), nullable=False),
        sa.Column("qty", sa.Integer, nullable=False),
        sa.Column("createdAt", UtcDateTime(), nullable=False),
        sa.Column("updatedAt", UtcDateTime(), nullable=False),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )


def downgrade() -> None:
    op.drop_table("products")
