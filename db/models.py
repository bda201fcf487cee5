"""Every table, declared once (SQLModel): the migrations create them, and a test compares these
models with a migrated database (`alembic` autogenerate finds no difference), so the two cannot
drift. Money columns are integer minor units (BIGINT); the API formats them.

Ledger shape (double-entry): every movement is a journal whose entries sum to zero per currency.
Wallet accounts keep a running `balance` and `held` (every reservation requires `balance - held`
to cover it; only a dispute takes a wallet below zero, and a wallet below zero is restricted:
it reserves nothing); system accounts (funding, settlement, fees, disputes, losses) are derived
from their entries only, so no single hot row serializes every payment. Runtime code reads whole
rows through these models where that is clearest; conditional updates stay hand-written SQL in
the db/ modules.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Double,
    ForeignKeyConstraint,
    Index,
    Integer,
    PrimaryKeyConstraint,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel


def _col(type_: Any, *, name: str | None = None, pk: bool = False, null: bool = False,
         default: str | None = None, autoincrement: bool = False) -> Any:
    """A column as the migrations made it: its type, NOT NULL unless `null`, its server default
    (a new Column for each table, so a mixin can declare columns several tables share)."""
    options: dict[str, Any] = {"server_default": text(default) if default else None,
                               "autoincrement": True if autoincrement else "auto"}
    if name:
        options["name"] = name
    if null:
        return Field(default=None, sa_type=type_, nullable=True, sa_column_kwargs=options)
    return Field(sa_type=type_, nullable=False, primary_key=pk, sa_column_kwargs=options)


class SagaProjection(SQLModel):
    """The read projection of a saga's workflow (the workflow is the source of truth), as payments
    and transfers share it: its id (the workflow id), the key that made it, money in minor units,
    status and failure, where it was charged and why."""

    id: str = _col(Text, pk=True)
    tenant_id: str = _col(Text)
    idempotency_key: str = _col(Text)
    fingerprint: str = _col(Text)
    run_id: str = _col(Text)
    amount: int = _col(BigInteger)
    fee: int = _col(BigInteger)
    currency: str = _col(Text)
    status: str = _col(Text)
    version: int = _col(Integer, default='1')
    created_at: datetime = _col(DateTime(timezone=True))
    updated_at: datetime = _col(DateTime(timezone=True), default='now()')
    failure_code: str | None = _col(Text, null=True)
    failure_message: str | None = _col(Text, null=True)
    gateway_reference: str | None = _col(Text, null=True)
    connector: str | None = _col(Text, null=True)
    routing_reason: str | None = _col(Text, null=True)


class Account(SQLModel, table=True):
    __tablename__ = "accounts"
    __table_args__ = (
        CheckConstraint("kind <> 'wallet'::text OR held >= 0", name='ck_wallet_not_overdrawn'),
        CheckConstraint("kind = ANY (ARRAY['wallet'::text, 'funding'::text, 'settlement'::text, "
                        "'fees'::text, 'disputes'::text, 'losses'::text])",
                        name='accounts_kind_check'),
        PrimaryKeyConstraint('id', name='accounts_pkey'),
        UniqueConstraint('tenant_id', 'kind', 'user_id', 'currency', name='uq_accounts_owner')
    )

    id: str = _col(Text, pk=True)
    tenant_id: str = _col(Text)
    kind: str = _col(Text)
    user_id: str = _col(Text)
    currency: str = _col(Text)
    balance: int = _col(BigInteger, default='0')
    held: int = _col(BigInteger, default='0')
    version: int = _col(Integer, default='1')
    created_at: datetime = _col(DateTime(timezone=True), default='now()')
    updated_at: datetime = _col(DateTime(timezone=True), default='now()')
    disputed: int = _col(BigInteger, default='0')  # what open disputes took from the wallet


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_keys"
    __table_args__ = (
        CheckConstraint("kind = 'operator'::text OR scopes !~ 'reconciliations:'::text",
                        name='ck_api_keys_tenant_scopes'),
        CheckConstraint("kind = ANY (ARRAY['tenant'::text, 'operator'::text])", name='api_keys_kind_check'),
        PrimaryKeyConstraint('id', name='api_keys_pkey'),
        UniqueConstraint('key_hash', name='api_keys_key_hash_key'),
        Index('ix_api_keys_kind', 'kind'),
        Index('ix_api_keys_tenant', 'tenant_id')
    )

    id: str = _col(Text, pk=True)
    tenant_id: str = _col(Text)
    name: str = _col(Text)
    key_hash: str = _col(Text)
    scopes: str = _col(Text)
    created_at: datetime = _col(DateTime(timezone=True), default='now()')
    kind: str = _col(Text, default="'tenant'::text")
    revoked_at: datetime | None = _col(DateTime(timezone=True), null=True)


class Event(SQLModel, table=True):
    """The outbox: each domain event, written in the transaction of the change it reports."""

    __tablename__ = "events"
    __table_args__ = (
        PrimaryKeyConstraint('id', name='events_pkey'),
        UniqueConstraint('dedupe_key', name='events_dedupe_key_key'),
        Index('ix_events_payment', 'payment_id', 'id'),
        Index('ix_events_unpublished', 'id', postgresql_where='(published_at IS NULL)')
    )

    id: int = _col(BigInteger, pk=True, autoincrement=True)
    dedupe_key: str = _col(Text)
    type: str = _col(Text)
    tenant_id: str = _col(Text)
    data: dict[str, Any] = _col(JSONB)
    created_at: datetime = _col(DateTime(timezone=True), default='now()')
    payment_id: str | None = _col(Text, null=True)
    wallet_id: str | None = _col(Text, null=True)
    published_at: datetime | None = _col(DateTime(timezone=True), null=True)


class Journal(SQLModel, table=True):
    """A movement of money; its entries sum to zero. `reference` makes posting idempotent."""

    __tablename__ = "journals"
    __table_args__ = (
        PrimaryKeyConstraint('id', name='journals_pkey'),
        UniqueConstraint('reference', name='journals_reference_key'),
        Index('journals_created', 'created_at')
    )

    id: str = _col(Text, pk=True)
    kind: str = _col(Text)
    reference: str = _col(Text)
    currency: str = _col(Text)
    created_at: datetime = _col(DateTime(timezone=True), default='now()')
    payment_id: str | None = _col(Text, null=True)


class Payment(SagaProjection, table=True):
    """A payment's read projection (the `Payment` workflow is the source of truth)."""

    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint('amount > 0', name='payments_amount_check'),
        CheckConstraint('amount_refunded >= 0 AND amount_refunded <= amount', name='ck_refund_bounds'),
        CheckConstraint('fee >= 0', name='payments_fee_check'),
        CheckConstraint('refund_reserved >= 0 AND refund_reserved <= amount',
                        name='payments_refund_reserved_bounds'),
        PrimaryKeyConstraint('id', name='payments_pkey'),
        UniqueConstraint('tenant_id', 'idempotency_key', name='uq_payments_idempotency'),
        Index('ix_payments_tenant_created', 'tenant_id', text('created_at DESC'), text('id DESC')),
        Index('ix_payments_tenant_status', 'tenant_id', 'status', text('created_at DESC')),
        Index('ix_payments_tenant_user', 'tenant_id', 'user_id', text('created_at DESC')),
        CheckConstraint("capture_method = ANY (ARRAY['automatic'::text, 'manual'::text])",
                        name='payments_capture_method_check'),
        CheckConstraint('amount_captured IS NULL OR amount_authorized IS NULL '
                        'OR amount_captured <= amount_authorized',
                        name='ck_captured_within_authorized'),
        Index('ix_payments_authorizations', 'capture_before',
              postgresql_where="(status = 'requires_capture'::text)"),
    )

    user_id: str = _col(Text)
    service_id: str = _col(Text)
    attempt: int = _col(Integer, default='0')
    manual_retries: int = _col(Integer, default='0')
    max_manual_retries: int = _col(Integer, default='3')
    amount_refunded: int = _col(BigInteger, default='0')
    refund_reserved: int = _col(BigInteger, default='0')
    wallet_id: str | None = _col(Text, null=True)
    description: str | None = _col(Text, null=True)
    reference: str | None = _col(Text, null=True)
    metadata_: dict[str, Any] | None = _col(JSONB, name='metadata', null=True)
    # manual capture (automatic: charged at once): authorized until capture_before
    capture_method: str = _col(Text, default="'automatic'::text")
    capture_before: datetime | None = _col(DateTime(timezone=True), null=True)
    amount_authorized: int | None = _col(BigInteger, null=True)
    amount_captured: int | None = _col(BigInteger, null=True)
    next_action_url: str | None = _col(Text, null=True)  # 3-D Secure: where to authenticate


class RateLimit(SQLModel, table=True):
    __tablename__ = "rate_limits"
    __table_args__ = (
        PrimaryKeyConstraint('key_id', 'scope', name='rate_limits_pkey'),
    )

    key_id: str = _col(Text, pk=True)
    scope: str = _col(Text, pk=True)
    tokens: float = _col(Double(53))
    updated_at: datetime = _col(DateTime(timezone=True), default='clock_timestamp()')


class ReconciliationFinding(SQLModel, table=True):
    __tablename__ = "reconciliation_findings"
    __table_args__ = (
        PrimaryKeyConstraint('id', name='reconciliation_findings_pkey'),
        UniqueConstraint('gateway_key', 'class', name='reconciliation_findings_gateway_key_class_key'),
        Index('findings_last_run', 'last_reconciliation_id', 'id'),
        Index('findings_open', 'status', 'severity')
    )

    id: int = _col(BigInteger, pk=True, autoincrement=True)
    class_: str = _col(Text, name='class')
    severity: str = _col(Text)
    gateway_key: str = _col(Text)
    evidence: dict[str, Any] = _col(JSONB)
    heal: str = _col(Text)
    status: str = _col(Text)
    first_reconciliation_id: str = _col(Text)
    last_reconciliation_id: str = _col(Text)
    times_seen: int = _col(Integer, default='1')
    created_at: datetime = _col(DateTime(timezone=True), default='now()')
    updated_at: datetime = _col(DateTime(timezone=True), default='now()')
    gateway_reference: str | None = _col(Text, null=True)
    tenant_id: str | None = _col(Text, null=True)
    payment_id: str | None = _col(Text, null=True)
    outcome: str | None = _col(Text, null=True)
    note: str | None = _col(Text, null=True)
    resolved_by: str | None = _col(Text, null=True)
    resolved_at: datetime | None = _col(DateTime(timezone=True), null=True)
    connector: str | None = _col(Text, null=True)


class ReconciliationPage(SQLModel, table=True):
    __tablename__ = "reconciliation_pages"
    __table_args__ = (
        PrimaryKeyConstraint('reconciliation_id', 'cursor', name='reconciliation_pages_pkey'),
    )

    reconciliation_id: str = _col(Text, pk=True)
    cursor: str = _col(Text, pk=True)
    counts: dict[str, Any] = _col(JSONB)


class ReconciliationSeen(SQLModel, table=True):
    __tablename__ = "reconciliation_seen"
    __table_args__ = (
        PrimaryKeyConstraint('reconciliation_id', 'key', name='reconciliation_seen_pkey'),
    )

    reconciliation_id: str = _col(Text, pk=True)
    key: str = _col(Text, pk=True)


class Reconciliation(SQLModel, table=True):
    __tablename__ = "reconciliations"
    __table_args__ = (
        PrimaryKeyConstraint('id', name='reconciliations_pkey'),
        Index('reconciliations_created', text('created_at DESC'), text('id DESC'))
    )

    id: str = _col(Text, pk=True)
    trigger: str = _col(Text)
    window_start: datetime = _col(DateTime(timezone=True))
    window_end: datetime = _col(DateTime(timezone=True))
    status: str = _col(Text)
    counts: dict[str, Any] = _col(JSONB, default="'{}'::jsonb")
    created_at: datetime = _col(DateTime(timezone=True), default='now()')
    requested_by: str | None = _col(Text, null=True)
    completed_at: datetime | None = _col(DateTime(timezone=True), null=True)


class WebhookEndpoint(SQLModel, table=True):
    __tablename__ = "webhook_endpoints"
    __table_args__ = (
        PrimaryKeyConstraint('id', name='webhook_endpoints_pkey'),
        Index('ix_webhook_endpoints_tenant', 'tenant_id')
    )

    id: str = _col(Text, pk=True)
    tenant_id: str = _col(Text)
    url: str = _col(Text)
    events: str = _col(Text)
    secret: str = _col(Text)
    created_at: datetime = _col(DateTime(timezone=True), default='now()')
    enabled: bool = _col(Boolean, default='true')
    updated_at: datetime = _col(DateTime(timezone=True), default='now()')
    previous_secret: str | None = _col(Text, null=True)
    previous_secret_expires_at: datetime | None = _col(DateTime(timezone=True), null=True)
    deleted_at: datetime | None = _col(DateTime(timezone=True), null=True)


class Deposit(SQLModel, table=True):
    __tablename__ = "deposits"
    __table_args__ = (
        CheckConstraint('amount > 0', name='deposits_amount_check'),
        ForeignKeyConstraint(['journal_id'], ['journals.id'], name='deposits_journal_id_fkey'),
        ForeignKeyConstraint(['wallet_id'], ['accounts.id'], name='deposits_wallet_id_fkey'),
        PrimaryKeyConstraint('id', name='deposits_pkey'),
        UniqueConstraint('tenant_id', 'idempotency_key', name='uq_deposits_idempotency')
    )

    id: str = _col(Text, pk=True)
    tenant_id: str = _col(Text)
    wallet_id: str = _col(Text)
    idempotency_key: str = _col(Text)
    fingerprint: str = _col(Text)
    amount: int = _col(BigInteger)
    currency: str = _col(Text)
    journal_id: str = _col(Text)
    created_at: datetime = _col(DateTime(timezone=True), default='now()')


class Entry(SQLModel, table=True):
    __tablename__ = "entries"
    __table_args__ = (
        ForeignKeyConstraint(['account_id'], ['accounts.id'], name='entries_account_id_fkey'),
        ForeignKeyConstraint(['journal_id'], ['journals.id'], name='entries_journal_id_fkey'),
        PrimaryKeyConstraint('id', name='entries_pkey'),
        Index('ix_entries_account', 'account_id', 'id'),
        Index('ix_entries_journal', 'journal_id')
    )

    id: int = _col(BigInteger, pk=True, autoincrement=True)
    journal_id: str = _col(Text)
    account_id: str = _col(Text)
    type: str = _col(Text)
    amount: int = _col(BigInteger)
    currency: str = _col(Text)
    created_at: datetime = _col(DateTime(timezone=True), default='now()')
    balance_after: int | None = _col(BigInteger, null=True)
    payment_id: str | None = _col(Text, null=True)


class Hold(SQLModel, table=True):
    """Funds held on a wallet for one attempt of a payment (or a withdrawal): active, then
    captured or released."""

    __tablename__ = "holds"
    __table_args__ = (
        CheckConstraint('amount > 0', name='holds_amount_check'),
        CheckConstraint("status = ANY (ARRAY['active'::text, 'captured'::text, 'released'::text])",
                        name='holds_status_check'),
        ForeignKeyConstraint(['wallet_id'], ['accounts.id'], name='holds_wallet_id_fkey'),
        PrimaryKeyConstraint('id', name='holds_pkey'),
        UniqueConstraint('payment_id', 'attempt', name='uq_holds_attempt'),
        Index('ix_holds_active_expiry', 'expires_at', postgresql_where="(status = 'active'::text)")
    )

    id: str = _col(Text, pk=True)
    payment_id: str = _col(Text)
    attempt: int = _col(Integer)
    wallet_id: str = _col(Text)
    amount: int = _col(BigInteger)
    status: str = _col(Text)
    expires_at: datetime = _col(DateTime(timezone=True))
    created_at: datetime = _col(DateTime(timezone=True), default='now()')
    updated_at: datetime = _col(DateTime(timezone=True), default='now()')
    reason: str | None = _col(Text, null=True)


class Refund(SQLModel, table=True):
    __tablename__ = "refunds"
    __table_args__ = (
        CheckConstraint('amount > 0', name='refunds_amount_check'),
        CheckConstraint('fee >= 0', name='refunds_fee_check'),
        CheckConstraint("status = ANY (ARRAY['pending'::text, 'succeeded'::text, 'failed'::text])",
                        name='refunds_status_check'),
        ForeignKeyConstraint(['payment_id'], ['payments.id'], name='refunds_payment_id_fkey'),
        PrimaryKeyConstraint('id', name='refunds_pkey'),
        Index('ix_refunds_payment', 'payment_id', 'created_at')
    )

    id: str = _col(Text, pk=True)
    payment_id: str = _col(Text)
    tenant_id: str = _col(Text)
    amount: int = _col(BigInteger)
    fee: int = _col(BigInteger)
    currency: str = _col(Text)
    status: str = _col(Text)
    fingerprint: str = _col(Text)
    created_at: datetime = _col(DateTime(timezone=True), default='now()')
    updated_at: datetime = _col(DateTime(timezone=True), default='now()')
    reason: str | None = _col(Text, null=True)
    failure_message: str | None = _col(Text, null=True)
    gateway_reference: str | None = _col(Text, null=True)


class Transfer(SagaProjection, table=True):
    """A top-up (kind top_up: money in, a charge) or a withdrawal (kind withdrawal: money out, a
    payout): the read projection of its workflow."""

    __tablename__ = "transfers"
    __table_args__ = (
        CheckConstraint('amount > 0', name='transfers_amount_check'),
        CheckConstraint('fee >= 0', name='transfers_fee_check'),
        CheckConstraint("kind = ANY (ARRAY['top_up'::text, 'withdrawal'::text])",
                        name='transfers_kind_check'),
        CheckConstraint("status = ANY (ARRAY['processing'::text, 'succeeded'::text, 'failed'::text])",
                        name='transfers_status_check'),
        ForeignKeyConstraint(['wallet_id'], ['accounts.id'], name='transfers_wallet_id_fkey'),
        PrimaryKeyConstraint('id', name='transfers_pkey'),
        UniqueConstraint('tenant_id', 'kind', 'idempotency_key', name='uq_transfers_key'),
        Index('ix_transfers_status', 'kind', 'status'),
        Index('ix_transfers_wallet', 'wallet_id', text('created_at DESC'), text('id DESC'))
    )

    kind: str = _col(Text)
    wallet_id: str = _col(Text)
    instrument: dict[str, Any] = _col(JSONB, default="'{}'::jsonb")


class WebhookDelivery(SQLModel, table=True):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        CheckConstraint("status = ANY (ARRAY['pending'::text, 'succeeded'::text, 'failed'::text])",
                        name='webhook_deliveries_status_check'),
        ForeignKeyConstraint(['endpoint_id'], ['webhook_endpoints.id'],
                             name='webhook_deliveries_endpoint_id_fkey'),
        ForeignKeyConstraint(['event_id'], ['events.id'], name='webhook_deliveries_event_id_fkey'),
        PrimaryKeyConstraint('id', name='webhook_deliveries_pkey'),
        UniqueConstraint('endpoint_id', 'event_id', name='uq_delivery'),
        Index('ix_webhook_deliveries_status', 'tenant_id', 'status', 'id')
    )

    id: str = _col(Text, pk=True)
    endpoint_id: str = _col(Text)
    event_id: int = _col(BigInteger)
    tenant_id: str = _col(Text)
    status: str = _col(Text)
    attempts: int = _col(Integer, default='0')
    created_at: datetime = _col(DateTime(timezone=True), default='now()')
    updated_at: datetime = _col(DateTime(timezone=True), default='now()')
    last_status_code: int | None = _col(Integer, null=True)
    last_error: str | None = _col(Text, null=True)


class ProcessorEvent(SQLModel, table=True):
    """A processor's signed event, stored once per connector and event id, then carried to its
    saga by the worker's relay (`delivered`, with the saga's answer), or kept `unmatched`."""

    __tablename__ = "processor_events"
    __table_args__ = (
        CheckConstraint("status = ANY (ARRAY['received'::text, 'delivered'::text, "
                        "'unmatched'::text])", name='processor_events_status_check'),
        PrimaryKeyConstraint('id', name='processor_events_pkey'),
        UniqueConstraint('connector', 'event_id', name='uq_processor_event'),
        Index('ix_processor_events_waiting', 'id', postgresql_where="(status = 'received'::text)"),
    )

    id: int = _col(BigInteger, pk=True, autoincrement=True)
    connector: str = _col(Text)
    event_id: str = _col(Text)
    type: str = _col(Text)
    subject: str | None = _col(Text, null=True)
    payload: dict[str, Any] = _col(JSONB)
    status: str = _col(Text, default="'received'::text")
    outcome: str | None = _col(Text, null=True)
    received_at: datetime = _col(DateTime(timezone=True), default='now()')
    delivered_at: datetime | None = _col(DateTime(timezone=True), null=True)



class Dispute(SQLModel, table=True):
    """A processor's dispute (a chargeback), the projection of its `Dispute` workflow: on a
    top-up's charge, `from_wallet` is what it took from the wallet; one on anything else is
    `unexpected` (recorded for an operator, no money moved by paysaga)."""

    __tablename__ = "disputes"
    __table_args__ = (
        CheckConstraint('amount > 0', name='disputes_amount_check'),
        CheckConstraint('fee >= 0', name='disputes_fee_check'),
        CheckConstraint('from_wallet >= 0', name='disputes_from_wallet_check'),
        CheckConstraint("status = ANY (ARRAY['needs_response'::text, 'under_review'::text, "
                        "'won'::text, 'lost'::text])", name='disputes_status_check'),
        ForeignKeyConstraint(['wallet_id'], ['accounts.id'], name='disputes_wallet_id_fkey'),
        PrimaryKeyConstraint('id', name='disputes_pkey'),
        UniqueConstraint('connector', 'processor_dispute_id', name='uq_disputes_processor'),
        Index('ix_disputes_tenant', 'tenant_id', text('created_at DESC'), text('id DESC')),
        Index('ix_disputes_open', 'evidence_due_by',
              postgresql_where="(status = 'needs_response'::text)"),
    )

    id: str = _col(Text, pk=True)
    connector: str = _col(Text)
    processor_dispute_id: str = _col(Text)
    tenant_id: str | None = _col(Text, null=True)
    wallet_id: str | None = _col(Text, null=True)
    top_up_id: str | None = _col(Text, null=True)
    payment_id: str | None = _col(Text, null=True)
    charge_id: str = _col(Text)
    amount: int = _col(BigInteger)
    from_wallet: int = _col(BigInteger, default='0')
    fee: int = _col(BigInteger)
    currency: str = _col(Text)
    reason: str = _col(Text)
    status: str = _col(Text)
    unexpected: bool = _col(Boolean, default='false')
    evidence: dict[str, Any] | None = _col(JSONB, null=True)
    evidence_due_by: datetime = _col(DateTime(timezone=True))
    outcome_reason: str | None = _col(Text, null=True)
    created_at: datetime = _col(DateTime(timezone=True), default='now()')
    updated_at: datetime = _col(DateTime(timezone=True), default='now()')
    closed_at: datetime | None = _col(DateTime(timezone=True), null=True)
    version: int = _col(Integer, default='1')
