"""The payment saga's contract: its input, each step's input and result, what it answers.

Plain dataclasses, so fields can be added with defaults without breaking running workflows (an
unknown field is ignored when a payload is read). Money is always integer minor units here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class SagaPolicy:
    """The knobs of one payment's saga, fixed when it starts (workflows may not read settings)."""

    hold_ttl_seconds: int = 15 * 60
    max_manual_retries: int = 3
    manual_retry_window_seconds: int = 72 * 3600
    gateway_timeout_seconds: float = 10.0
    gateway_retry_initial_seconds: float = 1.0
    gateway_retry_backoff: float = 2.0
    gateway_retry_max_interval_seconds: float = 30.0
    gateway_retry_max_attempts: int = 5
    ledger_retry_initial_seconds: float = 0.2
    ledger_retry_max_interval_seconds: float = 10.0
    ledger_retry_max_attempts: int = 0
    refund_window_seconds: int = 180 * 24 * 3600


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
class ConnectorPlan:
    """One connector of a payment's route, with its own timeout and retry policy."""

    name: str
    timeout_seconds: float = 10.0
    retry_initial_seconds: float = 1.0
    retry_backoff: float = 2.0
    retry_max_interval_seconds: float = 30.0
    retry_max_attempts: int = 5


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
class Failover:
    """Charging moves from one connector to the next within an attempt: the first is known not to
    have charged."""

    payment_id: str
    tenant_id: str
    attempt: int
    source: str
    target: str
    reason: str


@dataclass
class CancelPayment:
    payment_id: str
    tenant_id: str
    attempt: int
    reason: str
    requested_by: str | None = None


@dataclass
class Refusal:
    """An operator's command the payment refused (a signal cannot answer, so it is recorded)."""

    payment_id: str
    tenant_id: str
    attempt: int
    command: str  # retry | cancel
    reason: str
    requested_by: str
    refusal_id: str


@dataclass
class Failure:
    """Why an attempt failed: a failure code of the contract and a message."""

    code: str
    message: str


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


# Error types the workflow switches on (ApplicationError.type).
GATEWAY_DECLINED = "GatewayDeclined"
GATEWAY_UNAVAILABLE = "GatewayUnavailable"
PAYMENT_CONFLICT = "PaymentConflict"
GATEWAY_RATE_LIMITED = "GatewayRateLimited"


# The route of a payment or a top-up, by the declared rules: (its id, tenant, currency, amount in
# minor units) -> the connectors to try in order, and why.
Router = Callable[[str, str, str, int], tuple[list[ConnectorPlan], str]]
