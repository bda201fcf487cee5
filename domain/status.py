"""The payment state machine of the contract."""

from __future__ import annotations

from enum import StrEnum


class PaymentStatus(StrEnum):
    PENDING = "pending"
    RESERVED = "reserved"
    PROCESSING = "processing"
    REQUIRES_CAPTURE = "requires_capture"  # manual capture: authorized, waiting for a capture
    REQUIRES_ACTION = "requires_action"  # 3-D Secure: waiting for the customer to authenticate
    COMPLETED = "completed"
    FAILED = "failed"
    EXHAUSTED = "exhausted"
    CANCELED = "canceled"
    EXPIRED = "expired"  # manual capture: the authorization lapsed uncaptured and was voided
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"


class FailureCode(StrEnum):
    INSUFFICIENT_FUNDS = "insufficient_funds"
    WALLET_NOT_FOUND = "wallet_not_found"
    GATEWAY_DECLINED = "gateway_declined"
    GATEWAY_UNAVAILABLE = "gateway_unavailable"
    RESERVATION_EXPIRED = "reservation_expired"
    AUTHORIZATION_EXPIRED = "authorization_expired"
    AUTHENTICATION_TIMEOUT = "authentication_timeout"
    WALLET_RESTRICTED = "wallet_restricted"  # a dispute took the balance below zero


FINAL = frozenset(
    {PaymentStatus.EXHAUSTED, PaymentStatus.CANCELED, PaymentStatus.EXPIRED, PaymentStatus.REFUNDED}
)
# Statuses in which the saga no longer moves money by itself.
SETTLED = frozenset(
    {
        PaymentStatus.COMPLETED,
        PaymentStatus.PARTIALLY_REFUNDED,
        PaymentStatus.REFUNDED,
        PaymentStatus.EXHAUSTED,
        PaymentStatus.CANCELED,
        PaymentStatus.EXPIRED,
    }
)
CANCELABLE = frozenset({PaymentStatus.PENDING, PaymentStatus.RESERVED, PaymentStatus.FAILED})
