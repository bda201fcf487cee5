"""webhook endpoints can be changed, disabled, deleted and have their secret rotated

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    ALTER TABLE webhook_endpoints
        ADD COLUMN enabled BOOLEAN NOT NULL DEFAULT true,
        ADD COLUMN previous_secret TEXT,
        ADD COLUMN previous_secret_expires_at TIMESTAMPTZ,
        ADD COLUMN deleted_at TIMESTAMPTZ,
        ADD COLUMN updated_at TIMESTAMPTZ NOT NULL DEFAULT now()""")


def downgrade() -> None:
    op.execute("""
    ALTER TABLE webhook_endpoints DROP COLUMN enabled, DROP COLUMN previous_secret,
        DROP COLUMN previous_secret_expires_at, DROP COLUMN deleted_at, DROP COLUMN updated_at""")
