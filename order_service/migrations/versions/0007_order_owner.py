"""order owner: the subject that placed each order (NULL for older orders: back office only);
idempotency keys and their subjects compared byte for byte on MariaDB

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

from service_kit.storage.idempotency import compare_keys_exactly, compare_keys_loosely

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Compared byte for byte on MariaDB, as the token's subject is.
    subject = sa.String(255).with_variant(
        mysql.VARCHAR(255, charset="utf8mb4", collation="utf8mb4_bin"), "mysql", "mariadb"
    )
    op.add_column("orders", sa.Column("owner", subject, nullable=True))
    op.create_index(
        "ix_orders_owner_product_newest", "orders", ["owner", "productId", "id"], unique=False
    )
    compare_keys_exactly(op)


def downgrade() -> None:
    compare_keys_loosely(op)
    op.drop_index("ix_orders_owner_product_newest", table_name="orders")
    op.drop_column("orders", "owner")
