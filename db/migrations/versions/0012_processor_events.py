"""processor events in: each processor's signed webhook, stored once, then carried to its saga

Revision ID: 0012
Revises: 0011
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE processor_events (
        id            BIGSERIAL PRIMARY KEY,
        connector     TEXT NOT NULL,
        event_id      TEXT NOT NULL,
        type          TEXT NOT NULL,
        subject       TEXT,
        payload       JSONB NOT NULL,
        status        TEXT NOT NULL DEFAULT 'received'
                      CHECK (status IN ('received', 'delivered', 'unmatched')),
        outcome       TEXT,
        received_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
        delivered_at  TIMESTAMPTZ,
        CONSTRAINT uq_processor_event UNIQUE (connector, event_id)
    )
    """)
    op.execute("CREATE INDEX ix_processor_events_waiting ON processor_events (id) "
               "WHERE status = 'received'")


def downgrade() -> None:
    op.execute("DROP TABLE processor_events")
