"""idempotency keys on their orders: each order carries the Idempotency-Key it was placed with
and its request's fingerprint, unique per owner. Every key of the keys' table is copied onto its
order (expiry is judged by the order's `createdAt`); an order from before owners were recorded
gets its key's subject as owner. The keys' table stays for the pods of the release before,
which still write it while a rolling update replaces them (a repeat that crosses from one
release to the other in that minute is not recognised); a later release drops it.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Compared byte for byte on MariaDB, as the owner is.
    key = sa.String(128).with_variant(
        mysql.VARCHAR(128, charset="utf8mb4", collation="utf8mb4_bin"), "mysql", "mariadb"
    )
    op.add_column("orders", sa.Column("idempotencyKey", key, nullable=True))
    op.add_column("orders", sa.Column("fingerprint", sa.String(64), nullable=True))
    op.create_index("ux_orders_owner_key", "orders", ["owner", "idempotencyKey"], unique=True)
    # A key's answer was its order (`Location: /orders/<id>`), the key's scope who placed it.
    order_id = "CAST(SUBSTR(k.location, 9) AS {})"
    if op.get_bind().dialect.name in ("mysql", "mariadb"):
        op.execute(
            "UPDATE orders o JOIN idempotency_keys k"
            f" ON o.id = {order_id.format('UNSIGNED')}"
            " AND (o.owner = k.scope OR o.owner IS NULL)"
            " SET o.owner = k.scope, o.idempotencyKey = k.idempotencyKey,"
            " o.fingerprint = k.fingerprint"
            " WHERE k.status = 201 AND k.location LIKE '/orders/%'"
        )
    else:
        op.execute(
            'UPDATE orders SET owner = k.scope, "idempotencyKey" = k."idempotencyKey",'
            " fingerprint = k.fingerprint FROM idempotency_keys k"
            f" WHERE orders.id = {order_id.format('INTEGER')}"
            " AND (orders.owner = k.scope OR orders.owner IS NULL)"
            " AND k.status = 201 AND k.location LIKE '/orders/%'"
        )


def downgrade() -> None:
    op.drop_index("ux_orders_owner_key", table_name="orders")
    op.drop_column("orders", "fingerprint")
    op.drop_column("orders", "idempotencyKey")
