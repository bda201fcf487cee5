"""What every saga shares: the policy it starts with, its route of connectors, a charge at one
connector and its answer, a failover, and the gateway error types the workflows switch on.

Plain dataclasses (fields added with defaults keep running workflows readable); money is integer
minor units.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class SagaPolicy:
    """The knobs of one saga, fixed when it starts (workflows may not read settings)."""

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
    # outcomes that arrive later: how long a `processing` charge may take (its hold lasts that
    # long), and when the saga asks the processor itself if no event came
    async_max_seconds: int = 14 * 24 * 3600
    processor_sync_first_seconds: float = 60.0
    processor_sync_interval_seconds: float = 300.0
    action_timeout_seconds: int = 900  # 3-D Secure: how long the customer has to authenticate
    # a charge's or payout's first try runs as a local activity, its retries as an activity
    # (workflows/charging.move); False in the histories of sagas started before it, which replay
    # as they ran: every saga started since is started with True (temporal_client.saga_policy)
    first_try_local: bool = False
    # ... and lasts at most this long (then its retries, an activity, ask again under the same key):
    # a local activity holds a workflow task slot while it runs, a slow processor must not hold many
    first_try_seconds: float = 3.0
    # a payment's `processing` is published (its search attribute, its log line) only once the
    # charge waits past the workflow task that moved it there: a first try that settles ends that
    # task with the outcome, and Temporal applied `processing` and the outcome at once. False in
    # the histories of sagas started before (they replay as they ran); True since.
    processing_when_waiting: bool = False

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
    capture: bool = True  # False: authorize only (a manual-capture payment)
    source_type: str | None = None  # a top-up's source: bank_account is a debit, settled later
    # a charge that succeeds is posted by the charge activity itself, in its own transaction:
    # "payment" captures the payment's hold (amount + post_fee), "top_up" credits the top-up;
    # None (an authorization, a history from before): the saga's own step posts it
    post: str | None = None
    post_fee: int = 0

@dataclass
class Charge:
    """What the gateway says of one idempotency key: `succeeded`, `authorized` (captured later),
    `processing` (its outcome arrives later), `declined` or `not_found` (`expired`, in the
    workflow: not charged before the hold expired)."""

    status: str
    gateway_reference: str | None = None
    decline_code: str | None = None
    retryable_elsewhere: bool = False  # a soft decline the connector declares so
    redirect_url: str | None = None  # requires_action: where the customer authenticates
    posted: bool = False  # succeeded, and posted already (ChargeRequest.post)

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

# Error types the workflow switches on (ApplicationError.type).
GATEWAY_DECLINED = "GatewayDeclined"
GATEWAY_UNAVAILABLE = "GatewayUnavailable"
GATEWAY_RATE_LIMITED = "GatewayRateLimited"

# The route of a payment or a top-up, by the declared rules: (its id, tenant, currency, amount in
# minor units) -> the connectors to try in order, and why.
Router = Callable[[str, str, str, int], tuple[list[ConnectorPlan], str]]


@dataclass
class ProcessorEvent:
    """A processor's event about a charge, carried into its saga by the `processor_event` Update
    (whose id is the event's id: Temporal applies it once). `status`: succeeded or declined."""

    event_id: str
    connector: str
    charge_id: str
    status: str
    decline_code: str | None = None

