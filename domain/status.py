"""The payment state machine of the contract."""

from __future__ import annotations

from enum import StrEnum


class PaymentStatus(StrEnum):
    PENDING = "pending"
    RESERVED = "reserved"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    EXHAUSTED = "exhausted"
    CANCELED = "canceled"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"


class FailureCode(StrEnum):
    INSUFFICIENT_FUNDS = "insufficient_funds"
    WALLET_NOT_FOUND = "wallet_not_found"
    GATEWAY_DECLINED = "gateway_declined"
    GATEWAY_UNAVAILABLE = "gateway_unavailable"
    RESERVATION_EXPIRED = "reservation_expired"


FINAL = frozenset(
    {PaymentStatus.EXHAUSTED, PaymentStatus.CANCELED, PaymentStatus.REFUNDED}
)
# Statuses in which the saga no longer moves money by itself.
SETTLED = frozenset(
    {
        PaymentStatus.COMPLETED,
        PaymentStatus.PARTIALLY_REFUNDED,
        PaymentStatus.REFUNDED,
        PaymentStatus.EXHAUSTED,
        PaymentStatus.CANCELED,
    }
)
CANCELABLE = frozenset({PaymentStatus.PENDING, PaymentStatus.RESERVED, PaymentStatus.FAILED})
