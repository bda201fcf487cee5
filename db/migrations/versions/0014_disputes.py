"""Disputes: one row per processor dispute (its saga's projection); the accounts that hold
disputed money and losses; a wallet may go below zero through a dispute (then it is restricted:
it reserves nothing), so the overdraft check keeps only `held >= 0` (every reservation already
requires `balance - held >= amount` in its own conditional statement); `disputed` on a wallet is
what open disputes took from it.

Revision ID: 0014
Revises: 0013
"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE accounts DROP CONSTRAINT accounts_kind_check")
    op.execute("ALTER TABLE accounts ADD CONSTRAINT accounts_kind_check CHECK (kind IN "
               "('wallet', 'funding', 'settlement', 'fees', 'disputes', 'losses'))")
    op.execute("ALTER TABLE accounts DROP CONSTRAINT ck_wallet_not_overdrawn")
    op.execute("ALTER TABLE accounts ADD CONSTRAINT ck_wallet_not_overdrawn "
               "CHECK (kind <> 'wallet' OR held >= 0)")
    op.execute("ALTER TABLE accounts ADD COLUMN disputed BIGINT NOT NULL DEFAULT 0")
    op.execute("""
    CREATE TABLE disputes (
        id                    TEXT PRIMARY KEY,
        connector             TEXT NOT NULL,
        processor_dispute_id  TEXT NOT NULL,
        tenant_id             TEXT,
        wallet_id             TEXT REFERENCES accounts (id),
        top_up_id             TEXT,
        payment_id            TEXT,
        charge_id             TEXT NOT NULL,
        amount                BIGINT NOT NULL CHECK (amount > 0),
        from_wallet           BIGINT NOT NULL DEFAULT 0 CHECK (from_wallet >= 0),
        fee                   BIGINT NOT NULL CHECK (fee >= 0),
        currency              TEXT NOT NULL,
        reason                TEXT NOT NULL,
        status                TEXT NOT NULL
                              CHECK (status IN ('needs_response', 'under_review', 'won', 'lost')),
        unexpected            BOOLEAN NOT NULL DEFAULT false,
        evidence              JSONB,
        evidence_due_by       TIMESTAMPTZ NOT NULL,
        outcome_reason        TEXT,
        created_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
        updated_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
        closed_at             TIMESTAMPTZ,
        version               INTEGER NOT NULL DEFAULT 1,
        CONSTRAINT uq_disputes_processor UNIQUE (connector, processor_dispute_id)
    )""")
    op.execute("CREATE INDEX ix_disputes_tenant ON disputes (tenant_id, created_at DESC, id DESC)")
    op.execute("CREATE INDEX ix_disputes_open ON disputes (evidence_due_by) "
               "WHERE status = 'needs_response'")


def downgrade() -> None:
    op.execute("DROP TABLE disputes")
    op.execute("ALTER TABLE accounts DROP COLUMN disputed")
    op.execute("ALTER TABLE accounts DROP CONSTRAINT ck_wallet_not_overdrawn")
    op.execute("ALTER TABLE accounts ADD CONSTRAINT ck_wallet_not_overdrawn "
               "CHECK (kind <> 'wallet' OR (held >= 0 AND balance >= held))")
    op.execute("ALTER TABLE accounts DROP CONSTRAINT accounts_kind_check")
    op.execute("ALTER TABLE accounts ADD CONSTRAINT accounts_kind_check CHECK (kind IN "
               "('wallet', 'funding', 'settlement', 'fees'))")
