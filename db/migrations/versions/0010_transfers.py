"""money in and out: top-ups (a card charged, the wallet credited) and withdrawals (a hold, a payout)

Revision ID: 0010
Revises: 0009
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE transfers (
        id               TEXT PRIMARY KEY,
        kind             TEXT NOT NULL CHECK (kind IN ('top_up', 'withdrawal')),
        tenant_id        TEXT NOT NULL,
        idempotency_key  TEXT NOT NULL,
        fingerprint      TEXT NOT NULL,
        run_id           TEXT NOT NULL,
        wallet_id        TEXT NOT NULL REFERENCES accounts (id),
        amount           BIGINT NOT NULL CHECK (amount > 0),
        fee              BIGINT NOT NULL CHECK (fee >= 0),
        currency         TEXT NOT NULL,
        status           TEXT NOT NULL CHECK (status IN ('processing', 'succeeded', 'failed')),
        failure_code     TEXT,
        failure_message  TEXT,
        gateway_reference TEXT,
        connector        TEXT,
        routing_reason   TEXT,
        instrument       JSONB NOT NULL DEFAULT '{}',
        created_at       TIMESTAMPTZ NOT NULL,
        updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
        version          INTEGER NOT NULL DEFAULT 1,
        CONSTRAINT uq_transfers_key UNIQUE (tenant_id, kind, idempotency_key)
    )""")
    op.execute("CREATE INDEX ix_transfers_wallet ON transfers (wallet_id, created_at DESC, id DESC)")
    op.execute("CREATE INDEX ix_transfers_status ON transfers (kind, status)")


def downgrade() -> None:
    op.execute("DROP TABLE transfers")
