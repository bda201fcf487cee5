"""3-D Secure: where the customer authenticates while a payment requires their action

Revision ID: 0013
Revises: 0012
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE payments ADD COLUMN next_action_url TEXT")


def downgrade() -> None:
    op.execute("ALTER TABLE payments DROP COLUMN next_action_url")
