"""refund reservations: the refundable amount is reserved in one conditional statement

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE payments ADD COLUMN refund_reserved BIGINT NOT NULL DEFAULT 0")
    # Refunds accepted before the upgrade (pending or done) keep their share reserved.
    op.execute("""
    UPDATE payments p SET refund_reserved = r.total
    FROM (SELECT payment_id, sum(amount) AS total FROM refunds
          WHERE status IN ('pending', 'succeeded') GROUP BY payment_id) r
    WHERE r.payment_id = p.id""")
    op.execute("ALTER TABLE payments ADD CONSTRAINT payments_refund_reserved_bounds "
               "CHECK (refund_reserved >= 0 AND refund_reserved <= amount)")


def downgrade() -> None:
    op.execute("ALTER TABLE payments DROP COLUMN refund_reserved")
