"""create orders

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
        "orders",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("productId", sa.Integer, nullable=False),
        sa.Column("qty", sa.Integer, nullable=False),
        sa.Column("totalPrice", Money(18), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("createdAt", UtcDateTime(), nullable=False),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.create_index("ix_orders_product_newest", "orders", ["productId", "id"])


def downgrade() -> None:
    op.drop_table("orders")
