"""Saga v1's contract, frozen: a copy of the dataclasses its workflow passes, as they were when it
was retired, so an edit to the live contracts (contracts/) can never break a v1 replay. Fields
the live contracts added are ignored when v1 reads a payload.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from contracts.payment import ConnectorPlan, SagaPolicy  # read by the shared policies


@dataclass
class PaymentInput:
    payment_id: str
    tenant_id: str
    idempotency_key: str
    fingerprint: str
    user_id: str
    service_id: str
    amount: int
    fee: int
    currency: str
    created_at: str
    description: str | None = None
    reference: str | None = None
    metadata: dict[str, Any] | None = None
    policy: SagaPolicy = field(default_factory=SagaPolicy)


@dataclass
class OpenPayment:
    """Saga v2 opens the payment and reserves attempt 0 in one step, holding until `expires_at`."""

    payment: PaymentInput
    run_id: str
    expires_at: str = ""


@dataclass
class ReserveFunds:
    payment_id: str
    tenant_id: str
    attempt: int
    user_id: str
    currency: str
    total: int
    expires_at: str


@dataclass
class Reservation:
    ok: bool
    wallet_id: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    # the connectors this payment tries, in order, and why (decided and recorded when it opens)
    route: list[ConnectorPlan] = field(default_factory=list)
    route_reason: str | None = None




@dataclass
class ChargeRequest:
    payment_id: str
    tenant_id: str
    attempt: int
    amount: int
    currency: str
    connector: str | None = None  # None: the default connector, with the old key (before routing)
    # another connector follows: an open circuit answers `circuit_open` (nothing was sent) at once
    fail_fast: bool = False


@dataclass
class Charge:
    """What the gateway says of one idempotency key: `succeeded`, `declined` or `not_found`
    (`expired`, in the workflow: not charged before the hold expired)."""

    status: str
    gateway_reference: str | None = None
    decline_code: str | None = None
    retryable_elsewhere: bool = False  # a soft decline the connector declares so


@dataclass
class CaptureFunds:
    payment_id: str
    tenant_id: str
    attempt: int
    amount: int
    fee: int
    currency: str
    gateway_reference: str | None
    connector: str | None = None


@dataclass
class ReleaseHold:
    payment_id: str
    tenant_id: str
    attempt: int
    reason: str
    decline_code: str | None = None  # the gateway declined: recorded with the release


@dataclass
class FailPayment:
    payment_id: str
    tenant_id: str
    attempt: int
    code: str
    message: str
    exhausted: bool


@dataclass
class BeginRetry:
    """Saga v2 begins the retry and reserves the new attempt in one step: user, currency, total
    and expiry say what to hold."""

    payment_id: str
    tenant_id: str
    attempt: int
    manual_retries: int
    source: str
    user_id: str = ""
    currency: str = ""
    total: int = 0
    expires_at: str = ""
    connector: str | None = None  # the route's first connector, tried first again


@dataclass
class CancelPayment:
    payment_id: str
    tenant_id: str
    attempt: int
    reason: str
    requested_by: str | None = None


@dataclass
class PaymentState:
    """What the workflow knows right now; the API falls back to it before the projection exists."""

    payment_id: str
    status: str
    attempt: int
    manual_retries: int
    max_manual_retries: int
    failure_code: str | None = None
    failure_message: str | None = None
    gateway_reference: str | None = None
    wallet_id: str | None = None
    connector: str | None = None
    amount_refunded: int = 0


@dataclass
class RefundRequest:
    """amount 0 means "everything still refundable"."""

    refund_id: str
    amount: int
    fingerprint: str
    reason: str | None = None


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
    fully_refunded: bool = False
    failure_message: str | None = None
    fingerprint: str = ""
    connector: str | None = None  # the connector that charged: the refund goes back there


# Error types the workflow switches on (ApplicationError.type).
GATEWAY_DECLINED = "GatewayDeclined"
GATEWAY_UNAVAILABLE = "GatewayUnavailable"
PAYMENT_CONFLICT = "PaymentConflict"
