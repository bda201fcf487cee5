"""reconciliation against the gateway's report: runs, their pages, the keys they saw, findings

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE reconciliations (
        id            TEXT PRIMARY KEY,
        trigger       TEXT NOT NULL,               -- schedule | api | cli
        requested_by  TEXT,
        window_start  TIMESTAMPTZ NOT NULL,
        window_end    TIMESTAMPTZ NOT NULL,
        status        TEXT NOT NULL,               -- running | completed
        counts        JSONB NOT NULL DEFAULT '{}',
        created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
        completed_at  TIMESTAMPTZ
    )""")
    op.execute("CREATE INDEX reconciliations_created ON reconciliations (created_at DESC, id DESC)")
    # One row per page of the report a run has classified: its counts, written with the page's
    # findings, so a retried page is counted once.
    op.execute("""
    CREATE TABLE reconciliation_pages (
        reconciliation_id TEXT NOT NULL,
        cursor            BIGINT NOT NULL,
        counts            JSONB NOT NULL,
        PRIMARY KEY (reconciliation_id, cursor)
    )""")
    # The gateway keys a run found in the report, for the ledger side (captures with no charge);
    # deleted when the run completes.
    op.execute("""
    CREATE TABLE reconciliation_seen (
        reconciliation_id TEXT NOT NULL,
        key               TEXT NOT NULL,
        PRIMARY KEY (reconciliation_id, key)
    )""")
    # A mismatch, once per gateway record and class however many runs see it.
    op.execute("""
    CREATE TABLE reconciliation_findings (
        id                BIGSERIAL PRIMARY KEY,
        class             TEXT NOT NULL,
        severity          TEXT NOT NULL,
        gateway_key       TEXT NOT NULL,
        gateway_reference TEXT,
        tenant_id         TEXT,
        payment_id        TEXT,
        evidence          JSONB NOT NULL,
        heal              TEXT NOT NULL,           -- capture | refund | post | none
        status            TEXT NOT NULL,           -- healing | healed | open | resolved
        outcome           TEXT,                    -- what the heal did, or why it could not
        note              TEXT,
        resolved_by       TEXT,
        first_reconciliation_id TEXT NOT NULL,
        last_reconciliation_id  TEXT NOT NULL,
        times_seen        INTEGER NOT NULL DEFAULT 1,
        created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
        updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
        resolved_at       TIMESTAMPTZ,
        UNIQUE (gateway_key, class)
    )""")
    op.execute("CREATE INDEX findings_last_run ON reconciliation_findings (last_reconciliation_id, id)")
    op.execute("CREATE INDEX findings_open ON reconciliation_findings (status, severity)")
    op.execute("CREATE INDEX journals_created ON journals (created_at)")


def downgrade() -> None:
    op.execute("DROP INDEX journals_created")
    op.execute("DROP TABLE reconciliation_findings")
    op.execute("DROP TABLE reconciliation_seen")
    op.execute("DROP TABLE reconciliation_pages")
    op.execute("DROP TABLE reconciliations")
