"""outbox and inbox

Revision ID: 0002
Revises: 0001
"""

from alembic import op

from service_kit.messaging.outbox import create_event_tables

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_event_tables(op)


def downgrade() -> None:
    op.drop_table("inbox")
    op.drop_table("outbox")
