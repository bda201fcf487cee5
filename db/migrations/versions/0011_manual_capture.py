"""manual capture: a payment authorized now and captured (all or less) before its window ends

Revision ID: 0011
Revises: 0010
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    ALTER TABLE payments
        ADD COLUMN capture_method    TEXT NOT NULL DEFAULT 'automatic'
                                     CHECK (capture_method IN ('automatic', 'manual')),
        ADD COLUMN capture_before    TIMESTAMPTZ,
        ADD COLUMN amount_authorized BIGINT,
        ADD COLUMN amount_captured   BIGINT,
        ADD CONSTRAINT ck_captured_within_authorized
            CHECK (amount_captured IS NULL OR amount_authorized IS NULL
                   OR amount_captured <= amount_authorized)
    """)
    op.execute("CREATE INDEX ix_payments_authorizations ON payments (capture_before) "
               "WHERE status = 'requires_capture'")


def downgrade() -> None:
    op.execute("DROP INDEX ix_payments_authorizations")
    op.execute("""
    ALTER TABLE payments DROP CONSTRAINT ck_captured_within_authorized,
        DROP COLUMN amount_captured, DROP COLUMN amount_authorized, DROP COLUMN capture_before,
        DROP COLUMN capture_method
    """)
