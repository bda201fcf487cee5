"""The payment saga's contract: its input, each step's input and result, what it answers (what
every saga shares is contracts/saga.py).

Plain dataclasses, so fields can be added with defaults without breaking running workflows (an
unknown field is ignored when a payload is read). Money is always integer minor units here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from contracts.saga import ConnectorPlan, SagaPolicy


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
    # manual capture: authorize now, capture (all or less) before `capture_before` (RFC 3339),
    # the fee recomputed on the captured amount at `fee_bps`
    capture_method: str = "automatic"
    capture_before: str | None = None
    fee_bps: int = 0

    @property
    def manual(self) -> bool:
        return self.capture_method == "manual"


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
    next_action_url: str | None = None  # requires_action: where the customer authenticates


PAYMENT_CONFLICT = "PaymentConflict"  # an error type the payment saga switches on (ApplicationError.type)


@dataclass
class Authorized:
    """A manual payment's authorization succeeded: it waits for a capture until
    `capture_before`."""

    payment_id: str
    tenant_id: str
    attempt: int
    amount: int
    currency: str
    gateway_reference: str | None
    capture_before: str
    connector: str | None = None


@dataclass
class CaptureRequest:
    """The `capture` update's argument (REST and `temporal workflow update execute --name
    capture --input '{"amount": "6.00"}'`): a decimal string in the payment's currency, at most
    the authorized amount; none: all of it."""

    amount: str | None = None


@dataclass
class CaptureCharge:
    """Capture an authorization at its connector (idempotent by the charge)."""

    payment_id: str
    tenant_id: str
    attempt: int
    gateway_reference: str
    amount: int
    currency: str
    connector: str | None = None


@dataclass
class Captured:
    """What the connector did with a capture or a void: `captured` (with the amount), `voided`,
    or `refused` (with its code: authorization_expired, already_voided)."""

    status: str
    amount: int = 0
    code: str | None = None


@dataclass
class EndAuthorization:
    """A manual payment's authorization ends uncaptured: `voided` (canceled by a caller) or
    `expired` (its window lapsed); the hold is released."""

    payment_id: str
    tenant_id: str
    attempt: int
    outcome: str
    reason: str
    requested_by: str | None = None


@dataclass
class AwaitProcessor:
    """The processor answered `processing`: the payment waits for its outcome until `until`,
    its hold extended that long (`payment.processing`); a top-up records `top_up.processing`."""

    payment_id: str
    tenant_id: str
    attempt: int
    gateway_reference: str | None
    until: str
    connector: str | None = None
    next_action_url: str | None = None  # 3-D Secure: the payment requires the customer's action

