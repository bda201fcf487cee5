"""ledger, payments projection, deposits, outbox, api keys

Revision ID: 0001
Revises:
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    name        TEXT NOT NULL,
    key_hash    TEXT NOT NULL UNIQUE,
    scopes      TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at  TIMESTAMPTZ
);
CREATE INDEX ix_api_keys_tenant ON api_keys (tenant_id);

CREATE TABLE accounts (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('wallet', 'funding', 'settlement', 'fees')),
    user_id     TEXT NOT NULL,
    currency    TEXT NOT NULL,
    balance     BIGINT NOT NULL DEFAULT 0,
    held        BIGINT NOT NULL DEFAULT 0,
    version     INTEGER NOT NULL DEFAULT 1,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT uq_accounts_owner UNIQUE (tenant_id, kind, user_id, currency),
    CONSTRAINT ck_wallet_not_overdrawn CHECK (kind <> 'wallet' OR (held >= 0 AND balance >= held))
);

CREATE TABLE holds (
    id          TEXT PRIMARY KEY,
    payment_id  TEXT NOT NULL,
    attempt     INTEGER NOT NULL,
    wallet_id   TEXT NOT NULL REFERENCES accounts (id),
    amount      BIGINT NOT NULL CHECK (amount > 0),
    status      TEXT NOT NULL CHECK (status IN ('active', 'captured', 'released')),
    reason      TEXT,
    expires_at  TIMESTAMPTZ NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT uq_holds_attempt UNIQUE (payment_id, attempt)
);
CREATE INDEX ix_holds_active_expiry ON holds (expires_at) WHERE status = 'active';

CREATE TABLE journals (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    reference   TEXT NOT NULL UNIQUE,
    payment_id  TEXT,
    currency    TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE entries (
    id            BIGSERIAL PRIMARY KEY,
    journal_id    TEXT NOT NULL REFERENCES journals (id),
    account_id    TEXT NOT NULL REFERENCES accounts (id),
    type          TEXT NOT NULL,
    amount        BIGINT NOT NULL,
    balance_after BIGINT,
    currency      TEXT NOT NULL,
    payment_id    TEXT,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX ix_entries_account ON entries (account_id, id);
CREATE INDEX ix_entries_journal ON entries (journal_id);

CREATE TABLE payments (
    id                 TEXT PRIMARY KEY,
    tenant_id          TEXT NOT NULL,
    idempotency_key    TEXT NOT NULL,
    fingerprint        TEXT NOT NULL,
    run_id             TEXT NOT NULL,
    user_id            TEXT NOT NULL,
    service_id         TEXT NOT NULL,
    wallet_id          TEXT,
    amount             BIGINT NOT NULL CHECK (amount > 0),
    fee                BIGINT NOT NULL CHECK (fee >= 0),
    currency           TEXT NOT NULL,
    description        TEXT,
    reference          TEXT,
    metadata           JSONB,
    status             TEXT NOT NULL,
    failure_code       TEXT,
    failure_message    TEXT,
    attempt            INTEGER NOT NULL DEFAULT 0,
    manual_retries     INTEGER NOT NULL DEFAULT 0,
    max_manual_retries INTEGER NOT NULL DEFAULT 3,
    amount_refunded    BIGINT NOT NULL DEFAULT 0,
    gateway_reference  TEXT,
    version            INTEGER NOT NULL DEFAULT 1,
    created_at         TIMESTAMPTZ NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT uq_payments_idempotency UNIQUE (tenant_id, idempotency_key),
    CONSTRAINT ck_refund_bounds CHECK (amount_refunded >= 0 AND amount_refunded <= amount)
);
CREATE INDEX ix_payments_tenant_created ON payments (tenant_id, created_at DESC, id DESC);
CREATE INDEX ix_payments_tenant_status ON payments (tenant_id, status, created_at DESC);
CREATE INDEX ix_payments_tenant_user ON payments (tenant_id, user_id, created_at DESC);

CREATE TABLE deposits (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    wallet_id       TEXT NOT NULL REFERENCES accounts (id),
    idempotency_key TEXT NOT NULL,
    fingerprint     TEXT NOT NULL,
    amount          BIGINT NOT NULL CHECK (amount > 0),
    currency        TEXT NOT NULL,
    journal_id      TEXT NOT NULL REFERENCES journals (id),
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT uq_deposits_idempotency UNIQUE (tenant_id, idempotency_key)
);

CREATE TABLE events (
    id           BIGSERIAL PRIMARY KEY,
    dedupe_key   TEXT NOT NULL UNIQUE,
    type         TEXT NOT NULL,
    tenant_id    TEXT NOT NULL,
    payment_id   TEXT,
    wallet_id    TEXT,
    data         JSONB NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    published_at TIMESTAMPTZ
);
CREATE INDEX ix_events_payment ON events (payment_id, id);
CREATE INDEX ix_events_unpublished ON events (id) WHERE published_at IS NULL;
"""

DOWNGRADE = """
DROP TABLE events; DROP TABLE deposits; DROP TABLE payments; DROP TABLE entries;
DROP TABLE journals; DROP TABLE holds; DROP TABLE accounts; DROP TABLE api_keys;
"""


def upgrade() -> None:
    for statement in UPGRADE.split(";"):
        if statement.strip():
            op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE.split(";"):
        if statement.strip():
            op.execute(statement)
