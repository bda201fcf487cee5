"""webhook endpoints and deliveries

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE webhook_endpoints (
        id          TEXT PRIMARY KEY,
        tenant_id   TEXT NOT NULL,
        url         TEXT NOT NULL,
        events      TEXT NOT NULL,
        secret      TEXT NOT NULL,
        created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
    )""")
    op.execute("CREATE INDEX ix_webhook_endpoints_tenant ON webhook_endpoints (tenant_id)")
    op.execute("""
    CREATE TABLE webhook_deliveries (
        id               TEXT PRIMARY KEY,
        endpoint_id      TEXT NOT NULL REFERENCES webhook_endpoints (id),
        event_id         BIGINT NOT NULL REFERENCES events (id),
        tenant_id        TEXT NOT NULL,
        status           TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
        attempts         INTEGER NOT NULL DEFAULT 0,
        last_status_code INTEGER,
        last_error       TEXT,
        created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
        updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
        CONSTRAINT uq_delivery UNIQUE (endpoint_id, event_id)
    )""")
    op.execute("CREATE INDEX ix_webhook_deliveries_status ON webhook_deliveries (tenant_id, status, id)")


def downgrade() -> None:
    op.execute("DROP TABLE webhook_deliveries")
    op.execute("DROP TABLE webhook_endpoints")
