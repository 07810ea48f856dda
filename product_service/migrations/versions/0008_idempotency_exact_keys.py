"""idempotency keys and their subjects compared byte for byte on MariaDB (utf8mb4_bin)

Revision ID: 0008
Revises: 0007
"""

from alembic import op

from service_kit.storage.idempotency import compare_keys_exactly, compare_keys_loosely

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    compare_keys_exactly(op)


def downgrade() -> None:
    compare_keys_loosely(op)
