"""refunds

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE refunds (
        id                TEXT PRIMARY KEY,
        payment_id        TEXT NOT NULL REFERENCES payments (id),
        tenant_id         TEXT NOT NULL,
        amount            BIGINT NOT NULL CHECK (amount > 0),
        fee               BIGINT NOT NULL CHECK (fee >= 0),
        currency          TEXT NOT NULL,
        status            TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
        fingerprint       TEXT NOT NULL,
        reason            TEXT,
        failure_message   TEXT,
        gateway_reference TEXT,
        created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
        updated_at        TIMESTAMPTZ NOT NULL DEFAULT now()
    )""")
    op.execute("CREATE INDEX ix_refunds_payment ON refunds (payment_id, created_at)")


def downgrade() -> None:
    op.execute("DROP TABLE refunds")
