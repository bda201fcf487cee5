"""several processors: the connector a payment was routed to (and why), and a finding's connector

Revision ID: 0008
Revises: 0007
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE payments ADD COLUMN connector TEXT, ADD COLUMN routing_reason TEXT")
    op.execute("ALTER TABLE reconciliation_findings ADD COLUMN connector TEXT")
    # a run's pages are per connector's report (and the ledger's side): a text key
    op.execute("ALTER TABLE reconciliation_pages ALTER COLUMN cursor TYPE TEXT")


def downgrade() -> None:
    op.execute("DELETE FROM reconciliation_pages")
    op.execute("ALTER TABLE reconciliation_pages ALTER COLUMN cursor TYPE BIGINT "
               "USING NULL")
    op.execute("ALTER TABLE reconciliation_findings DROP COLUMN connector")
    op.execute("ALTER TABLE payments DROP COLUMN routing_reason, DROP COLUMN connector")
