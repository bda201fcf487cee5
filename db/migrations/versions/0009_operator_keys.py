"""least privilege: API keys are tenant keys or platform operator keys

Tenant keys hold tenant scopes only; the operator scopes (reconciliation spans every tenant) are
taken off tenant keys that were given them by default, and belong to operator keys from now on.

Revision ID: 0009
Revises: 0008
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE api_keys ADD COLUMN kind TEXT NOT NULL DEFAULT 'tenant' "
               "CHECK (kind IN ('tenant', 'operator'))")
    op.execute(r"""
        UPDATE api_keys
        SET scopes = btrim(regexp_replace(scopes, '(^|\s)reconciliations:\w+', '', 'g'))
        WHERE kind = 'tenant' AND scopes ~ 'reconciliations:'
    """)
    op.execute("ALTER TABLE api_keys ADD CONSTRAINT ck_api_keys_tenant_scopes "
               "CHECK (kind = 'operator' OR scopes !~ 'reconciliations:')")
    op.execute("CREATE INDEX ix_api_keys_kind ON api_keys (kind)")


def downgrade() -> None:
    op.execute("DROP INDEX ix_api_keys_kind")
    op.execute("ALTER TABLE api_keys DROP CONSTRAINT ck_api_keys_tenant_scopes")
    op.execute("ALTER TABLE api_keys DROP COLUMN kind")
