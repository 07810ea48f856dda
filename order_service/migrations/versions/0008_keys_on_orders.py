"""idempotency keys on their orders: each order carries the Idempotency-Key it was placed with
and its request's fingerprint, unique per owner; the keys' own table goes (its unexpired keys
move onto their orders). A downgrade brings back an empty keys table: the keys of the last
`ORDER_IDEMPOTENCY_TTL_H` are then forgotten.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

from service_kit.storage.idempotency import compare_keys_exactly, create_idempotency_table

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
    # A key's answer was its order: `Location: /orders/<id>`, the key's scope its owner.
    order_id = "CAST(SUBSTR(k.location, 9) AS {})"
    if op.get_bind().dialect.name in ("mysql", "mariadb"):
        op.execute(
            "UPDATE orders o JOIN idempotency_keys k"
            f" ON o.id = {order_id.format('UNSIGNED')} AND o.owner = k.scope"
            " SET o.idempotencyKey = k.idempotencyKey, o.fingerprint = k.fingerprint"
            " WHERE k.status = 201 AND k.location LIKE '/orders/%'"
        )
    else:
        op.execute(
            'UPDATE orders SET "idempotencyKey" = k."idempotencyKey", fingerprint = k.fingerprint'
            " FROM idempotency_keys k"
            f" WHERE orders.id = {order_id.format('INTEGER')} AND orders.owner = k.scope"
            " AND k.status = 201 AND k.location LIKE '/orders/%'"
        )
    op.drop_table("idempotency_keys")


def downgrade() -> None:
    create_idempotency_table(op)
    compare_keys_exactly(op)
    op.drop_index("ux_orders_owner_key", table_name="orders")
    op.drop_column("orders", "fingerprint")
    op.drop_column("orders", "idempotencyKey")
