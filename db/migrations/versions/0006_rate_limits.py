"""per-API-key rate limits: one token bucket per key and scope, shared by every API process

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE rate_limits (
        key_id     TEXT NOT NULL,
        scope      TEXT NOT NULL,
        tokens     DOUBLE PRECISION NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
        PRIMARY KEY (key_id, scope)
    )""")


def downgrade() -> None:
    op.execute("DROP TABLE rate_limits")
