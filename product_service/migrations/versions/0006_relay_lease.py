"""relay_lease: which worker's relay publishes the outbox

Revision ID: 0006
Revises: 0005
"""

from alembic import op

from service_kit.messaging.outbox import create_relay_lease_table

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_relay_lease_table(op)


def downgrade() -> None:
    op.drop_table("relay_lease")
