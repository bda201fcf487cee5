"""The top-up and withdrawal sagas' contract: money in through a card charge, money out through a
payout. Money is integer minor units; an id is also its workflow id (`tup_...`, `wdr_...`).

Plain dataclasses, so fields can be added with defaults without breaking running workflows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from contracts.saga import ConnectorPlan, SagaPolicy


@dataclass
class TransferInput:
    """A top-up (money in) or a withdrawal (money out) of one wallet."""

    transfer_id: str
    tenant_id: str
    idempotency_key: str
    fingerprint: str
    wallet_id: str
    amount: int
    fee: int
    currency: str
    created_at: str
    instrument: dict[str, Any] = field(default_factory=dict)  # the source or the destination
    policy: SagaPolicy = field(default_factory=SagaPolicy)


@dataclass
class OpenTransfer:
    transfer: TransferInput
    run_id: str
    expires_at: str = ""  # a withdrawal's hold, and either's charge or payout deadline


@dataclass
class Opened:
    """What the opening step decided: the connectors to try (a top-up's route; a withdrawal pays
    out at the first only), and, for a withdrawal, whether the wallet could hold amount + fee."""

    ok: bool = True
    route: list[ConnectorPlan] = field(default_factory=list)
    route_reason: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None


@dataclass
class PayoutRequest:
    withdrawal_id: str
    tenant_id: str
    amount: int
    currency: str
    connector: str | None = None
    post: bool = False  # a payout that succeeds is settled by the payout activity itself


@dataclass
class Payout:
    """What the gateway says of a payout's key: succeeded, declined or not_found."""

    status: str
    gateway_reference: str | None = None
    decline_code: str | None = None
    posted: bool = False  # succeeded, and the withdrawal settled already (PayoutRequest.post)


@dataclass
class SettleTransfer:
    """The outcome to record: succeeded (with the gateway's reference) or failed (with a code)."""

    transfer_id: str
    tenant_id: str
    succeeded: bool
    gateway_reference: str | None = None
    connector: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None


@dataclass
class TransferState:
    transfer_id: str
    status: str  # processing | succeeded | failed
    failure_code: str | None = None
    failure_message: str | None = None
    gateway_reference: str | None = None
    connector: str | None = None
