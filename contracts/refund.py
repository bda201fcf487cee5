"""The refund saga's contract. Money is integer minor units."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class RefundView:
    refund_id: str
    amount: int
    fee: int
    status: str  # pending | succeeded | failed
    fingerprint: str
    reason: str | None = None
    failure_message: str | None = None
    replayed: bool = False
    payment_id: str | None = None


@dataclass
class RefundStep:
    payment_id: str
    tenant_id: str
    refund_id: str
    amount: int
    fee: int
    currency: str
    gateway_reference: str | None
    reason: str | None = None
    failure_message: str | None = None
    fingerprint: str = ""
    connector: str | None = None  # the connector that charged: the refund goes back there


@dataclass
class RefundPosted:
    """What a refund saga posted: the fee share is computed on the running refunded total."""

    refund_id: str
    amount: int
    fee: int
    payment_status: str
