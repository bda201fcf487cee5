"""Tables. Money columns are integer minor units (BIGINT); the API formats them.

Ledger shape (double-entry): every movement is a journal whose entries sum to zero per currency.
Wallet accounts keep a running `balance` and `held` (guarded by a CHECK: held never exceeds
balance); system accounts (funding, settlement, fees) are derived from their entries only, so no
single hot row serializes every payment.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel


def _ts() -> Any:
    return Field(sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now()))


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_keys"
    id: str = Field(primary_key=True)
    tenant_id: str = Field(index=True)
    name: str
    key_hash: str = Field(unique=True)
    scopes: str  # space-separated
    kind: str = "tenant"  # tenant or operator (platform-wide); api/auth.py
    created_at: datetime = _ts()
    revoked_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))


class Account(SQLModel, table=True):
    __tablename__ = "accounts"
    id: str = Field(primary_key=True)
    tenant_id: str
    kind: str  # wallet | funding | settlement | fees
    user_id: str
    currency: str
    balance: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    held: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    version: int = 1
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class Hold(SQLModel, table=True):
    __tablename__ = "holds"
    id: str = Field(primary_key=True)
    payment_id: str
    attempt: int
    wallet_id: str
    amount: int = Field(sa_column=Column(BigInteger, nullable=False))
    status: str  # active | captured | released
    reason: str | None = None
    expires_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class Journal(SQLModel, table=True):
    __tablename__ = "journals"
    id: str = Field(primary_key=True)
    kind: str  # deposit | payment | refund
    reference: str = Field(unique=True)  # makes posting idempotent
    payment_id: str | None = None
    currency: str
    created_at: datetime = _ts()


class Entry(SQLModel, table=True):
    __tablename__ = "entries"
    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True))
    journal_id: str
    account_id: str
    type: str  # deposit | payment | fee | refund | fee_refund
    amount: int = Field(sa_column=Column(BigInteger, nullable=False))
    balance_after: int | None = Field(default=None, sa_column=Column(BigInteger))
    currency: str
    payment_id: str | None = None
    created_at: datetime = _ts()


class Payment(SQLModel, table=True):
    """The read projection of a payment workflow; the workflow is the source of truth."""

    __tablename__ = "payments"
    id: str = Field(primary_key=True)
    tenant_id: str
    idempotency_key: str
    fingerprint: str
    run_id: str
    user_id: str
    service_id: str
    wallet_id: str | None = None
    amount: int = Field(sa_column=Column(BigInteger, nullable=False))
    fee: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str
    description: str | None = None
    reference: str | None = None
    metadata_: dict[str, Any] | None = Field(default=None, sa_column=Column("metadata", JSONB))
    status: str
    failure_code: str | None = None
    failure_message: str | None = None
    attempt: int = 0
    manual_retries: int = 0
    max_manual_retries: int = 3
    amount_refunded: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    # refunds pending or done: what no new refund may take again (reserved by the API)
    refund_reserved: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    gateway_reference: str | None = None
    connector: str | None = None  # where it is (or was) charged: the route's pick, or its failover
    routing_reason: str | None = None
    version: int = 1
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    updated_at: datetime = _ts()


class Transfer(SQLModel, table=True):
    """A top-up (kind top_up: money in, a charge) or a withdrawal (kind withdrawal: money out, a
    payout): the read projection of its workflow."""

    __tablename__ = "transfers"
    id: str = Field(primary_key=True)
    kind: str
    tenant_id: str
    idempotency_key: str
    fingerprint: str
    run_id: str
    wallet_id: str
    amount: int = Field(sa_column=Column(BigInteger, nullable=False))
    fee: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str
    status: str  # processing | succeeded | failed
    failure_code: str | None = None
    failure_message: str | None = None
    gateway_reference: str | None = None
    connector: str | None = None
    routing_reason: str | None = None
    instrument: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    updated_at: datetime = _ts()
    version: int = 1


class Deposit(SQLModel, table=True):
    __tablename__ = "deposits"
    id: str = Field(primary_key=True)
    tenant_id: str
    wallet_id: str
    idempotency_key: str
    fingerprint: str
    amount: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str
    journal_id: str
    created_at: datetime = _ts()


class Event(SQLModel, table=True):
    """The outbox: each domain event, written in the transaction of the change it reports."""

    __tablename__ = "events"
    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True))
    dedupe_key: str = Field(unique=True)
    type: str
    tenant_id: str
    payment_id: str | None = None
    wallet_id: str | None = None
    data: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    created_at: datetime = _ts()
    published_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
