"""index the inbox by time, for pruning

Revision ID: 0003
Revises: 0002
"""

from alembic import op

from service_kit.messaging.outbox import index_inbox_by_time

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    index_inbox_by_time(op)


def downgrade() -> None:
    op.drop_index("ix_inbox_processedAt", table_name="inbox")
